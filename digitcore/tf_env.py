"""TensorFlow process settings that must be in place before TensorFlow is first imported.

oneDNN: TensorFlow turns its oneDNN kernels on by default only for CPUs with AVX-512/AMX. On AVX2-only CPUs
(such as this project's 2-core AMD EPYC) it falls back to Eigen, and training is 1.8x (CNN) to 3.2x (VGG16)
slower: measured with `benchmarks/bench_training.py`, VGG16 16 -> 51 images/s, CNN 681 -> 1219 images/s.
A user's own TF_ENABLE_ONEDNN_OPTS (0 or 1) always wins.
"""

import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up banner is noise in reports and the app
