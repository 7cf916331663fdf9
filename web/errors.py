"""The one error type of the web layer: an HTTP status and a message a person can act on."""

from __future__ import annotations


class ApiError(Exception):
    """A problem with a request (or with the server's models), answered as JSON ``{"error": message}``."""

    def __init__(self, status: int, message: str, **extra):
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.extra = extra

    def body(self) -> dict:
        return {"error": self.message, "status": self.status, **self.extra}
