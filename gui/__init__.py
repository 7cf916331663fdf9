"""Tk desktop view over `recognizer`: drawing canvas, model picker, live recognition.

Nothing here imports TensorFlow at import time: the window has to be usable within seconds,
so models are loaded by `gui.worker` in a background thread after the window is shown.
"""
