"""Tk desktop view over `recognizer`: drawing canvas, model picker, live recognition.

The window comes first: models are loaded by `gui.worker` in a background thread after it is shown
(milliseconds with the ONNX twins, seconds when a model falls back to TensorFlow), and a drawing sent
meanwhile is read as soon as its model can answer. `session.py` decides which model to read with,
`photo.py` holds an opened photo, `app.py` is the view.
"""
