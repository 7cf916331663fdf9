"""The small base that both the reading side (`recognizer`) and the study (`study`) stand on.

Nothing here imports TensorFlow, Keras or Tkinter: model names, file layout, atomic writes and the
process settings that must be in place before TensorFlow loads.
"""
