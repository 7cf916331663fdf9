"""The browser page and JSON API over the recognizer (``serve.py`` runs it): a view, no preprocessing of its own."""

from .server import create_app

__all__ = ["create_app"]
