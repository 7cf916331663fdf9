"""The confidence below which a digit reads as "?": one value for the app, the CLI, the server and benchmarks.

Chosen on the validation writers' numbers (benchmarks/bench_handwriting.py --choose-threshold; docs/RESULTS.md):
too high and right answers are hidden behind "?", too low and wrong ones are shown as sure. It acts on the
calibrated confidence (recognizer/calibration.py); re-chosen with the calibrated models (issue 30): unchanged.
"""

DEFAULT_THRESHOLD = 0.35
