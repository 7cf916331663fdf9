"""Load and validate an image (path or array) and turn it into a binary ink mask (ink = 255).

Handles: grayscale / RGB / RGBA arrays and files, dark ink on a light canvas or light ink on a dark one
(polarity is detected), photos and scans with uneven light (adaptive threshold), very large images
(scaled down first; the scale is reported so that boxes can be mapped back to input pixels).
The pixel operations are OpenCV's (grey conversion, area shrink, thresholds, histogram, connected components,
Gaussian, box mean, close); what is decided here is which of them to apply with which levels.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import RecognizerError

log = logging.getLogger(__name__)

MAX_SIDE = 1600          # larger images are scaled down to this long side before segmentation
MIN_CONTRAST = 40        # grey levels between background and ink below which an image counts as blank
STRONG_INK = 0.5         # a clean picture's strokes: at least half the ink contrast...
WEAK_INK = 0.25          # ...plus fainter pixels joined to them (grey pen on paper scans stays whole)
_CLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))  # closes one-pixel gaps in a photo's strokes
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
EXPECTED = ("expected a uint8 image array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) "
            "(bool and float arrays in [0, 1] are accepted too)")


@dataclass(frozen=True)
class InkImage:
    """Binary ink mask of an image, ink = 255, plus how it relates to the input image."""

    mask: np.ndarray        # uint8 (h, w), 0 = background, 255 = ink, possibly scaled down
    scale: float            # mask pixels per input pixel (<= 1)
    input_size: tuple       # (width, height) of the input image
    photo: bool             # True when the adaptive (uneven light) threshold was used
    blank: bool             # True when no ink could be found at all


# ------------------------------------------------------------------------------------ loading
def load_gray(image) -> np.ndarray:
    """Return the image as a 2-D uint8 grayscale array. `image` is a path or a numpy array."""
    if isinstance(image, (str, os.PathLike)):
        return _load_file(Path(image))
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if type(image).__module__.startswith("PIL."):  # a Pillow image: as if it had been read from a file
        return _from_pil(image)
    raise RecognizerError(f"cannot read an image from {type(image).__name__}: "
                          "pass a file path, a numpy array or a Pillow image; " + EXPECTED)


def _load_file(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not path.exists():
        raise RecognizerError(f"{path}: no such file")
    if path.is_dir():
        raise RecognizerError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later
            return _from_pil(ImageOps.exif_transpose(im))
    except UnidentifiedImageError:
        raise RecognizerError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated / corrupt data
        raise RecognizerError(f"{path}: unreadable or truncated image ({exc})") from None
    except Image.DecompressionBombError as exc:
        raise RecognizerError(f"{path}: image is too large ({exc})") from None


def _from_pil(im) -> np.ndarray:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        arr = np.asarray(im.convert("RGBA"))
    elif im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        arr = np.zeros(a.shape, np.uint8) if hi <= lo else ((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    else:
        arr = np.asarray(im.convert("RGB"))
    return _from_array(arr)


def _from_array(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise RecognizerError(f"image array has shape {arr.shape}; {EXPECTED}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise RecognizerError(f"image array is empty (shape {arr.shape}); {EXPECTED}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
            raise RecognizerError(f"float image array has values outside [0, 1] (or NaN); {EXPECTED}")
        arr = np.round(arr * 255.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise RecognizerError(f"image array has dtype {arr.dtype}; {EXPECTED}")
    if arr.ndim == 2:
        return np.ascontiguousarray(arr)
    if arr.shape[2] == 4:
        rgb = arr[:, :, :3].astype(np.float32)
        alpha = arr[:, :, 3].astype(np.float32) / 255.0
        if alpha.min() < 1.0:
            # composite onto white; if that leaves nothing (light ink on transparency) use alpha as ink
            comp = rgb * alpha[..., None] + 255.0 * (1.0 - alpha[..., None])
            gray = rgb_to_gray(comp.astype(np.uint8))
            if int(gray.max()) - int(gray.min()) < MIN_CONTRAST and alpha.max() - alpha.min() > 0.5:
                return (255 - np.round(alpha * 255)).astype(np.uint8)
            return gray
    return rgb_to_gray(arr)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """Grey levels of a uint8 (H, W, 3 or 4) RGB(A) array, alpha ignored (OpenCV's BT.601 weights)."""
    code = cv2.COLOR_RGBA2GRAY if rgb.shape[2] == 4 else cv2.COLOR_RGB2GRAY
    return cv2.cvtColor(np.ascontiguousarray(rgb), code)


# ------------------------------------------------------------------------------ binarisation
def to_ink(image) -> InkImage:
    """Load `image` and return its binary ink mask (polarity detected, large images scaled down)."""
    gray = load_gray(image)
    h, w = gray.shape
    scale = 1.0
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)  # area mean: thin strokes fade, not vanish
        log.debug("scaled %dx%d image down by %.3f", w, h, scale)
    mask, photo, blank = binarize(gray)
    return InkImage(mask=mask, scale=scale, input_size=(w, h), photo=photo, blank=blank)


def _above(gray: np.ndarray, level: float, light: bool) -> np.ndarray:
    """Mask (uint8, ink = 255) where the ink (dark on light paper, or light on dark) is stronger than `level`.

    `level` is measured in ink (0-255 from the background's side): on light paper ink = 255 - gray, so the ink
    is stronger than `level` where gray < 255 - level, i.e. gray <= ceil(255 - level) - 1.
    """
    if light:
        return cv2.threshold(gray, float(np.ceil(255.0 - level) - 1), 255, cv2.THRESH_BINARY_INV)[1]
    return cv2.threshold(gray, level, 255, cv2.THRESH_BINARY)[1]


def binarize(gray: np.ndarray) -> tuple[np.ndarray, bool, bool]:
    """Binary ink mask (ink=255) of a grayscale image; returns (mask, used_adaptive, blank)."""
    gray = np.ascontiguousarray(gray)
    # background level = median; ink is whatever differs from it (works for either polarity).
    # All statistics come from one 256-bin histogram (fast on large images).
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    cum = np.cumsum(hist)
    n = cum[-1]
    bg = float(np.searchsorted(cum, 0.5 * n))
    # the frame of a drawing is background even when bold ink covers most of a small image: trust a
    # uniform frame over the global median
    frame = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if frame.size >= 8:
        f10, f50, f90 = np.percentile(frame, (10, 50, 90))
        if f90 - f10 < 30:
            bg = float(f50)
    light = bg >= 128
    if light:
        hist, bg_ink = hist[::-1], 255.0 - bg  # ink = 255 - gray
    else:
        bg_ink = bg
    cum = np.cumsum(hist)
    top = int(np.nonzero(hist)[0].max())
    hi = max(float(np.searchsorted(cum, 0.999 * n)) if n > 1000 else float(top), 0.9 * top)
    if hi - bg_ink < MIN_CONTRAST:
        return np.zeros_like(gray), False, True
    b0, b1 = int(max(0, round(bg_ink) - 10)), int(min(255, round(bg_ink) + 10))
    near_bg = float(hist[b0:b1 + 1].sum()) / n
    near_ink = float(hist[int(max(b1 + 1, hi - 40)):].sum()) / n
    if near_bg >= 0.5 or near_bg + near_ink >= 0.85:  # a clean two-level picture (canvas, bold or not)
        # clean picture: strokes are what stands out by half the ink contrast, plus the fainter pixels joined to
        # them (hysteresis): a grey pen stroke on a scan is kept whole instead of broken into pieces
        strong = _above(gray, bg_ink + STRONG_INK * (hi - bg_ink), light)
        weak = _above(gray, bg_ink + WEAK_INK * (hi - bg_ink), light)
        return _hysteresis(strong, weak), False, False
    ink = cv2.bitwise_not(gray) if light else gray
    mask = _local_contrast(ink, hi - bg_ink)
    return mask, True, not mask.any()


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """The 8-connected pieces of `weak` that hold a `strong` pixel (masks, ink = 255; strong is a subset of weak).

    When every piece holds a strong pixel (the usual drawing) the answer is `weak` itself: no lookup through the
    labels.
    """
    if cv2.countNonZero(weak) <= cv2.countNonZero(strong):
        return strong
    n_labels, labels = cv2.connectedComponents(weak, connectivity=8)
    keep = np.zeros(n_labels, bool)
    keep[labels[strong > 0]] = True
    keep[0] = False
    if keep[1:].all():
        return weak
    return np.where(keep[labels], np.uint8(255), np.uint8(0))


# ------------------------------------------------------------------------------ photos and scans
def _local_contrast(ink: np.ndarray, contrast: float) -> np.ndarray:
    """Ink mask (uint8, ink = 255) of a photo or scan with uneven light: every pixel against its local mean."""
    h, w = ink.shape
    block = max(15, (min(h, w) // 8) | 1)
    blur = cv2.GaussianBlur(ink, (3, 3), 0)
    diff = blur.astype(np.int16) - cv2.blur(blur, (block, block)).astype(np.int16)
    # offset: clear of the paper's noise, and a fair share of the ink contrast
    noise = _median_abs(diff) * 1.4826
    c = max(12.0, 4.0 * noise, 0.25 * contrast)
    mask = np.where(diff > c, np.uint8(255), np.uint8(0))
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _CLOSE)


def _median_abs(diff: np.ndarray) -> float:
    """np.median(np.abs(diff)) of an int16 array in [-255, 255], from a histogram instead of a sort."""
    counts = np.cumsum(np.bincount(np.abs(diff).reshape(-1).view(np.uint16), minlength=256))
    n = int(counts[-1])
    lo, hi = np.searchsorted(counts, [(n - 1) // 2 + 1, n // 2 + 1])  # the middle one or two values, sorted
    return (float(lo) + float(hi)) / 2.0
