"""MNIST-style normalisation of one digit's ink.

MNIST digits were size-normalised to fit a 20x20 box (aspect kept, anti-aliased grey levels) and centred
by centre of mass in 28x28. Canvas digits come at any size and brush width, so in addition the stroke is
redrawn at a fixed relative width: the ink is resampled to a working size, skeletonised and redrawn with a
round brush, which makes a 4 px and a 30 px brush look alike (MNIST's stroke is ~2-3 px in 28x28).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from .mnist_ink import UPSCALE, ink_mask

WORK = 72          # long side of the skeleton at working resolution
PEN = 9            # brush diameter at working resolution -> ~2.7 px stroke in the 20 px box (MNIST median)
BOX = 20           # MNIST's digit box
SIZE = 28          # MNIST's image size
_PEN_KERNELS = {d: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d)) for d in range(1, 2 * PEN)}
_SMOOTH = (5, 5)


_skeletonize = None


def _load_zhang_skeleton():
    """scikit-image's 2-D skeleton kernel (Zhang-Suen), without importing `skimage.morphology`.

    `skimage.morphology` imports SciPy's ndimage and spatial modules: ~0.35 s of a reader's start-up, for one
    compiled function that needs none of them. The kernel is loaded from its extension file directly; if that
    ever fails (another scikit-image layout), the public `skeletonize` is used. Both give the same pixels
    (tests/test_recognizer_normalize.py checks it), which matters: the models were trained on these strokes.
    """
    import glob
    import importlib.util

    try:
        spec = importlib.util.find_spec("skimage")
        name = "skimage.morphology._skeletonize_various_cy"
        files = glob.glob(os.path.join(os.path.dirname(spec.origin), "morphology", "_skeletonize_various_cy.*"))
        ext = importlib.util.spec_from_file_location(name, files[0])
        module = importlib.util.module_from_spec(ext)
        ext.loader.exec_module(module)
        kernel = module._fast_skeletonize
        return lambda binary: kernel(np.ascontiguousarray(binary, dtype=bool))
    except Exception:  # noqa: BLE001 - any surprise: the slower public import still gives the same result
        from skimage.morphology import skeletonize

        return skeletonize


def _skeleton(binary: np.ndarray) -> np.ndarray:
    global _skeletonize
    if _skeletonize is None:  # first use, not with the package: the app's window must not wait for it
        _skeletonize = _load_zhang_skeleton()
    return _skeletonize(binary)


def _clip(value: int, low: int, high: int) -> int:
    """np.clip for one integer, without NumPy's per-call overhead (it showed in the per-digit profile)."""
    return min(max(int(value), low), high)


def normalize_digit(crop: np.ndarray) -> np.ndarray:
    """One digit's binary ink (uint8, ink=255, cropped or not) -> (28, 28) float32 in [0, 1], white on black."""
    out = np.zeros((SIZE, SIZE), np.float32)
    crop = np.ascontiguousarray(crop, dtype=np.uint8)
    x, y, w, h = cv2.boundingRect(crop)
    if w == 0 or h == 0:
        return out
    crop = crop[y:y + h, x:x + w]
    h, w = crop.shape

    # 1. resample to the working size (long side WORK), keeping aspect ratio
    s = WORK / max(h, w)
    ww, wh = max(1, round(w * s)), max(1, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    work = cv2.resize(crop, (ww, wh), interpolation=interp)
    pad = PEN + 3
    work = cv2.copyMakeBorder(work, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    work = cv2.GaussianBlur(work, _SMOOTH, 0)
    # a low threshold keeps thin (downscaled) strokes connected
    binary = work > (64 if s < 1 else 110)
    if not binary.any():
        binary = work > 0

    # 2. skeleton, redrawn with a round pen of fixed width
    skel = _skeleton(binary).astype(np.uint8) * 255
    if not skel.any():
        skel = binary.astype(np.uint8) * 255
    # a thick brush leaves a shorter skeleton (its ends sit a radius inside the stroke): scale the pen with
    # the skeleton so that the redrawn stroke has the same width relative to the 20 px box for any brush
    _, _, sw_, sh_ = cv2.boundingRect(skel)
    pen = _clip(round(PEN * max(sw_, sh_) / (WORK - 1)), 3, 2 * PEN - 1)
    ink = cv2.dilate(skel, _PEN_KERNELS[pen])

    # 3. fit the 20x20 box (long side 20, aspect kept), anti-aliased
    x, y, w, h = cv2.boundingRect(ink)
    ink = ink[y:y + h, x:x + w]
    h, w = ink.shape
    s = BOX / max(h, w)
    bw, bh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(ink, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

    # 4. centre of mass at the centre of the 28x28 field (integer shift, like MNIST)
    tot = float(small.sum())
    if tot <= 0:
        return out
    cy = float((small.sum(axis=1) * np.arange(bh)).sum()) / tot
    cx = float((small.sum(axis=0) * np.arange(bw)).sum()) / tot
    oy = _clip(round(SIZE / 2 - cy), 0, SIZE - bh)
    ox = _clip(round(SIZE / 2 - cx), 0, SIZE - bw)
    out[oy:oy + bh, ox:ox + bw] = small
    return out


def normalize_batch(crops) -> np.ndarray:
    """List of digit crops -> (N, 28, 28, 1) float32 batch."""
    batch = np.zeros((len(crops), SIZE, SIZE, 1), np.float32)
    for i, c in enumerate(crops):
        batch[i, :, :, 0] = normalize_digit(c)
    return batch


def renormalize_mnist(images: np.ndarray, upscale: int = UPSCALE) -> np.ndarray:
    """What the recognizer makes of MNIST digits: (N, 28, 28[, 1]) uint8 or [0, 1] floats -> (N, 28, 28, 1).

    Training on these (beside the originals) shows the models the exact distribution they get at inference:
    strokes redrawn at one width, smooth outlines. Without it a model loses about a point of accuracy on its
    own test digits once they have gone through `normalize_digit`. The ink comes from `mnist_ink.ink_mask`,
    which keeps the loops of bold digits (a plain threshold turned bold 9s into 7s: label noise).
    """
    x = np.asarray(images)
    if x.ndim == 4:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (SIZE, SIZE):
        raise ValueError(f"expected MNIST images of shape (N, 28, 28[, 1]), got {np.asarray(images).shape}")
    if x.dtype != np.uint8:
        x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
    out = np.empty((len(x), SIZE, SIZE, 1), np.float32)
    for i, img in enumerate(x):
        out[i, :, :, 0] = normalize_digit(ink_mask(img, upscale).astype(np.uint8) * 255)
    return out
