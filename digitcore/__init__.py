"""Shared core of the three-model MNIST comparison: data, training, evaluation, plots.

Everything the ANN, CNN and VGG16 scripts have in common lives here, once.
"""
