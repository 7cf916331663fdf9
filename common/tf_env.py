"""TensorFlow process settings that must be in place before TensorFlow is first imported.

oneDNN: TensorFlow turns its oneDNN kernels on by default only for CPUs with AVX-512/AMX; on AVX2-only CPUs
it falls back to Eigen, which trains several times slower (docs/RESULTS.md, "Training speed").
A user's own TF_ENABLE_ONEDNN_OPTS (0 or 1) always wins.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up banner is noise in reports and the app
