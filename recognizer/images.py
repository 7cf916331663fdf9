"""Load and validate an image (path or array) and turn it into a binary ink mask (ink = 255).

Handles: grayscale / RGB / RGBA arrays and files, dark ink on a light canvas or light ink on a dark one
(polarity is detected), photos and scans with uneven light (adaptive threshold), very large images
(scaled down first; the scale is reported so that boxes can be mapped back to input pixels).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .components import components
from .raster import bounding_box, box_mean, close_cross, gaussian3, shrink_area
from .errors import RecognizerError

log = logging.getLogger(__name__)

MAX_SIDE = 1600          # larger images are scaled down to this long side before segmentation
MIN_CONTRAST = 40        # grey levels between background and ink below which an image counts as blank
STRONG_INK = 0.5         # a clean picture's strokes: at least half the ink contrast...
WEAK_INK = 0.25          # ...plus fainter pixels joined to them (grey pen on paper scans stays whole)
_FEW_PIECES = 64         # up to this many faint pieces are erased one by one, more with one lookup
_GRAY_WEIGHTS = (9798, 19235, 3735)  # OpenCV's RGB -> grey weights (BT.601) in 15-bit fixed point
_GRAY_SHIFT = 15
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
    """Grey levels of a uint8 (H, W, 3 or 4) RGB(A) array, alpha ignored.

    OpenCV's fixed-point BT.601 weights (15 fractional bits, rounded), so that the grey levels, and with them
    every threshold and mask, are bit for bit those of the OpenCV-based reader this replaces.
    """
    r, g, b = (np.uint32(w) for w in _GRAY_WEIGHTS)
    acc = rgb[..., 0] * r
    acc += rgb[..., 1] * g
    acc += rgb[..., 2] * b
    acc += np.uint32(1 << (_GRAY_SHIFT - 1))
    acc >>= np.uint32(_GRAY_SHIFT)
    return acc.astype(np.uint8)


# ------------------------------------------------------------------------------ binarisation
def to_ink(image) -> InkImage:
    """Load `image` and return its binary ink mask (polarity detected, large images scaled down)."""
    gray = load_gray(image)
    h, w = gray.shape
    scale = 1.0
    if max(h, w) > MAX_SIDE:
        scale = MAX_SIDE / max(h, w)
        gray = shrink_area(gray, max(1, round(w * scale)), max(1, round(h * scale)))
        log.debug("scaled %dx%d image down by %.3f", w, h, scale)
    mask, photo, blank = binarize(gray)
    return InkImage(mask=mask, scale=scale, input_size=(w, h), photo=photo, blank=blank)


def _above(gray: np.ndarray, level: float, light: bool) -> np.ndarray:
    """True where the ink (dark on light paper, or light on dark) is stronger than `level` (0-255 of ink).

    Integer comparisons in uint8 (no float temporaries); the same pixels as OpenCV's threshold gave.
    """
    if light:  # ink = 255 - gray > level  <=>  gray < 255 - level  <=>  gray <= ceil(255 - level) - 1
        return _at_most(gray, int(np.ceil(255.0 - level)) - 1)
    return ~_at_most(gray, int(np.floor(level)))  # gray > level  <=>  not gray <= floor(level)


def _at_most(gray: np.ndarray, k: int) -> np.ndarray:
    """gray <= k as a bool array, for any integer k (out-of-range k gives all False / all True)."""
    if k < 0:
        return np.zeros(gray.shape, bool)
    if k >= 255:
        return np.ones(gray.shape, bool)
    return gray <= np.uint8(k)


def _as_mask(ink: np.ndarray) -> np.ndarray:
    """bool -> uint8 mask with ink = 255 (0 - 1 wraps to 255 in uint8: no multiply, no copy of the bools)."""
    return np.negative(ink.view(np.uint8))


def _histogram(gray: np.ndarray) -> np.ndarray:
    """256-bin histogram (int64) of a uint8 image.

    Counting pairs of neighbouring pixels as one 16-bit value halves the array np.bincount has to widen to
    intp, which is where its time goes; the 65536 pair counts fold back into 256 by either byte.
    """
    flat = gray.reshape(-1)
    pairs = flat.size // 2
    counts = np.bincount(flat[:2 * pairs].view(np.uint16), minlength=65536).reshape(256, 256)
    hist = counts.sum(axis=0) + counts.sum(axis=1)
    if flat.size % 2:
        hist[flat[-1]] += 1
    return hist


def binarize(gray: np.ndarray) -> tuple[np.ndarray, bool, bool]:
    """Binary ink mask (ink=255) of a grayscale image; returns (mask, used_adaptive, blank)."""
    gray = np.ascontiguousarray(gray)
    # background level = median; ink is whatever differs from it (works for either polarity).
    # All statistics come from one 256-bin histogram (fast on large images).
    hist = _histogram(gray)
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
        return _as_mask(_hysteresis(strong, weak)), False, False
    ink = 255 - gray if light else gray
    mask = _local_contrast(ink, hi - bg_ink)
    return _as_mask(mask), True, not mask.any()


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """The 8-connected pieces of `weak` (bool) that hold a `strong` pixel (strong is a subset of weak).

    Labelling runs on the bounding box of the weak pixels only, and when every piece holds a strong pixel (the
    usual drawing) the answer is `weak` itself: no full-size lookup through the labels.
    """
    if np.count_nonzero(weak) <= np.count_nonzero(strong):
        return strong
    bx, by, bw, bh = bounding_box(weak)
    box = np.s_[by:by + bh, bx:bx + bw]
    n_labels, labels, stats = components(_as_mask(np.ascontiguousarray(weak[box])))
    keep = np.zeros(n_labels, bool)
    keep[labels[strong[box]]] = True
    keep[0] = False
    out = weak.copy()
    dropped = np.flatnonzero(~keep[1:]) + 1
    if len(dropped) <= _FEW_PIECES:
        for i in dropped:  # erase each piece without a strong pixel inside its own bounding box
            x, y, w, h = (int(v) for v in stats[i, :4])
            sub = out[box][y:y + h, x:x + w]
            sub &= labels[y:y + h, x:x + w] != i
    else:
        out[box] = keep[labels]
    return out


# ------------------------------------------------------------------------------ photos and scans
def _local_contrast(ink: np.ndarray, contrast: float) -> np.ndarray:
    """Ink (bool) of a photo or scan with uneven light: every pixel compared with its local mean.

    Integer arithmetic throughout, the same pixels as OpenCV's GaussianBlur, blur and morphological close gave.
    """
    h, w = ink.shape
    block = max(15, (min(h, w) // 8) | 1)
    blur = gaussian3(ink)
    diff = blur.astype(np.int16) - box_mean(blur, block).astype(np.int16)
    # offset: clear of the paper's noise, and a fair share of the ink contrast
    noise = _median_abs(diff) * 1.4826
    c = max(12.0, 4.0 * noise, 0.25 * contrast)
    return close_cross(diff > c)


def _median_abs(diff: np.ndarray) -> float:
    """np.median(np.abs(diff)) of an int16 array in [-255, 255], from a histogram instead of a sort."""
    counts = np.cumsum(np.bincount(np.abs(diff).reshape(-1).view(np.uint16), minlength=256))
    n = int(counts[-1])
    lo, hi = np.searchsorted(counts, [(n - 1) // 2 + 1, n // 2 + 1])  # the middle one or two values, sorted
    return (float(lo) + float(hi)) / 2.0
