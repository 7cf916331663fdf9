"""recognizer.images reads without OpenCV and still gives OpenCV's pixels.

The reading side dropped OpenCV (install size); these tests hold the NumPy replacements to what OpenCV gave,
bit for bit where the arithmetic allows it: grey conversion, the 3x3 Gaussian, the box mean, the close, and
the whole binarisation against a reference kept here (the OpenCV-based implementation it replaced). OpenCV is a
development requirement only: the comparisons skip without it, the behaviour tests do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from recognizer import images
from recognizer import raster
from recognizer.images import binarize, load_gray, rgb_to_gray, to_ink
from recognizer.raster import shrink_area

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cv2():
    return pytest.importorskip("cv2")


# ------------------------------------------------------------------------- the reference (OpenCV) binarisation
def reference_binarize(gray: np.ndarray, cv2) -> tuple[np.ndarray, bool, bool]:
    """recognizer.images.binarize as it was with OpenCV (same constants): the masks must not move."""
    def above(level, light):
        if light:
            return cv2.threshold(gray, float(np.ceil(255.0 - level) - 1), 255, cv2.THRESH_BINARY_INV)[1]
        return cv2.threshold(gray, level, 255, cv2.THRESH_BINARY)[1]

    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    cum = np.cumsum(hist)
    n = cum[-1]
    bg = float(np.searchsorted(cum, 0.5 * n))
    frame = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if frame.size >= 8:
        f10, f50, f90 = np.percentile(frame, (10, 50, 90))
        if f90 - f10 < 30:
            bg = float(f50)
    light = bg >= 128
    hist, bg_ink = (hist[::-1], 255.0 - bg) if light else (hist, bg)
    cum = np.cumsum(hist)
    top = int(np.nonzero(hist)[0].max())
    hi = max(float(np.searchsorted(cum, 0.999 * n)) if n > 1000 else float(top), 0.9 * top)
    if hi - bg_ink < images.MIN_CONTRAST:
        return np.zeros_like(gray), False, True
    b0, b1 = int(max(0, round(bg_ink) - 10)), int(min(255, round(bg_ink) + 10))
    near_bg = float(hist[b0:b1 + 1].sum()) / n
    near_ink = float(hist[int(max(b1 + 1, hi - 40)):].sum()) / n
    if near_bg >= 0.5 or near_bg + near_ink >= 0.85:
        mask = above(bg_ink + images.STRONG_INK * (hi - bg_ink), light)
        weak = above(bg_ink + images.WEAK_INK * (hi - bg_ink), light)
        if cv2.countNonZero(weak) > cv2.countNonZero(mask):
            n_labels, labels = cv2.connectedComponents(weak, connectivity=8)
            keep = np.zeros(n_labels, bool)
            keep[np.unique(labels[mask > 0])] = True
            keep[0] = False
            mask = np.where(keep[labels], 255, 0).astype(np.uint8)
        return mask, False, False
    ink = cv2.bitwise_not(gray) if light else gray
    h, w = ink.shape
    block = max(15, (min(h, w) // 8) | 1)
    blur = cv2.GaussianBlur(ink, (3, 3), 0)
    diff = blur.astype(np.int16) - cv2.blur(blur, (block, block)).astype(np.int16)
    c = max(12.0, 4.0 * float(np.median(np.abs(diff))) * 1.4826, 0.25 * (hi - bg_ink))
    mask = np.where(diff > c, 255, 0).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return mask, True, not mask.any()


# ------------------------------------------------------------------------------------------- test images
def strokes(h: int, w: int, n: int, rng, width=(2, 14)) -> np.ndarray:
    """Antialiased random pen strokes, ink = 255 on 0 (drawn with Pillow: no OpenCV needed)."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (int(w) * 2, int(h) * 2), 0)  # drawn at twice the size, then shrunk: soft edges
    draw = ImageDraw.Draw(im)
    for _ in range(n):
        pts = [tuple(int(v) for v in p) for p in rng.integers(0, [2 * w, 2 * h], (int(rng.integers(2, 6)), 2))]
        draw.line(pts, fill=255, width=2 * int(rng.integers(*width)), joint="curve")
    return np.asarray(im.resize((int(w), int(h)), Image.Resampling.BOX))


def uneven_photo(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(photo, stroke mask): paper lit from one corner, sensor noise, dark pen strokes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 120 + 110 * (xx / w) * (0.4 + 0.6 * yy / h)
    ink = strokes(h, w, 4, rng, (max(2, h // 120), max(4, h // 60))).astype(np.float32) / 255
    photo = light * (1 - 0.65 * ink) + rng.normal(0, 4, (h, w))
    return np.clip(photo, 0, 255).astype(np.uint8), ink > 0.5


def synthetic_images() -> list[np.ndarray]:
    """Canvases of both polarities, grey and faint pens, speckle, bold ink and photos: every path of binarize."""
    rng = np.random.default_rng(5)
    out = []
    for i in range(8):
        h, w = rng.integers(28, 400, 2)
        ink = strokes(h, w, int(rng.integers(1, 10)), rng)
        out += [255 - ink, ink, (255 - 0.6 * ink).astype(np.uint8)]
    faint = 255 - strokes(200, 300, 6, rng)
    faint[rng.random(faint.shape) < 0.0005] = 160  # isolated faint specks: weak pieces without a strong pixel
    out.append(faint)
    many = 255 - strokes(300, 300, 4, rng)
    many[::4, ::4] = np.minimum(many[::4, ::4], 170)  # hundreds of faint pieces: the one-lookup branch
    out.append(many)
    out.append((255 - strokes(60, 80, 3, rng, (15, 30))))  # bold ink covering much of a small image
    out += [uneven_photo(h, w, s)[0] for s, (h, w) in enumerate([(120, 160), (480, 640), (900, 700)])]
    out.append(255 - uneven_photo(300, 400, 9)[0])
    out.append(np.full((50, 60), 200, np.uint8))  # blank
    return out


# --------------------------------------------------------------------------------------------- the tests
def test_reading_side_imports_no_opencv():
    for rel in ("recognizer/images.py", "recognize.py"):
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(name.split(".")[0] == "cv2" for name in names), rel


def test_grey_conversion_equals_opencv(cv2):
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (7, 3), (256, 256), (301, 517)]:
        rgb = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
        assert np.array_equal(rgb_to_gray(rgb), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        rgba = np.dstack([rgb, np.full(shape, 255, np.uint8)])  # opaque RGBA: the colour alone
        assert np.array_equal(load_gray(rgba), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        alpha = rng.integers(0, 256, shape, dtype=np.uint8)  # transparency: composited onto white first
        a = alpha.astype(np.float32)[..., None] / 255.0
        comp = (rgb.astype(np.float32) * a + 255.0 * (1.0 - a)).astype(np.uint8)
        assert np.array_equal(load_gray(np.dstack([rgb, alpha])), cv2.cvtColor(comp, cv2.COLOR_RGB2GRAY))


def test_filters_equal_opencv(cv2):
    rng = np.random.default_rng(1)
    cross = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for h, w in [(1, 1), (1, 9), (2, 3), (5, 40), (37, 23), (120, 97)]:
        g = rng.integers(0, 256, (h, w), dtype=np.uint8)
        assert np.array_equal(raster.gaussian3(g), cv2.GaussianBlur(g, (3, 3), 0)), (h, w)
        for block in (3, 15, 41):  # blocks wider than the image: mirrored again and again
            assert np.array_equal(raster.box_mean(g, block), cv2.blur(g, (block, block))), (h, w, block)
        m = rng.random((h, w)) < 0.4
        ref = cv2.morphologyEx(m.astype(np.uint8) * 255, cv2.MORPH_CLOSE, cross) > 0
        assert np.array_equal(raster.close_cross(m), ref), (h, w)


@pytest.mark.parametrize("shape, size", [((400, 700), (500, 286)), ((600, 400), (300, 200)),
                                         ((512, 512), (128, 128)), ((333, 1001), (999, 332))])
def test_shrink_within_one_grey_level_of_opencv(cv2, shape, size):
    rng = np.random.default_rng(2)
    g = rng.integers(0, 256, shape, dtype=np.uint8)
    g = cv2.GaussianBlur(g, (0, 0), 2) if shape[0] % 2 else g  # noise and smooth light
    diff = shrink_area(g, *size).astype(int) - cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    assert np.abs(diff).max() <= 1


def test_binarize_masks_equal_the_opencv_implementation(cv2):
    seen = set()
    for i, g in enumerate(synthetic_images()):
        mask, photo, blank = binarize(g)
        ref_mask, ref_photo, ref_blank = reference_binarize(g, cv2)
        assert (photo, blank) == (ref_photo, ref_blank), i
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask, ref_mask), (i, int(np.count_nonzero(mask != ref_mask)))
        seen.add("blank" if blank else "photo" if photo else "clean")
    assert seen == {"blank", "photo", "clean"}  # every path was compared


def test_hysteresis_drops_faint_pieces_and_keeps_grey_pen():
    g = np.full((60, 90), 250, np.uint8)
    g[20:40, 10:14] = 10    # a dark stroke...
    g[20:40, 14:18] = 150   # ...continued by grey pen: kept whole
    g[5:8, 60:63] = 150     # a grey speck on its own: dropped
    g[50:52, 70:80] = 150
    mask = to_ink(g).mask
    assert mask[20:40, 10:18].all() and not mask[5:8, 60:63].any() and not mask[50:52, 70:80].any()
    assert np.count_nonzero(mask) == 20 * 8


def test_uneven_light_photo_gives_a_clean_mask():
    photo, ink = uneven_photo(480, 640, 3)
    res = to_ink(photo)
    assert res.photo and not res.blank and res.scale == 1.0
    found = res.mask > 0
    assert found[ink].mean() > 0.95  # the strokes...
    near = np.zeros_like(ink)  # the strokes grown by 6 px: antialiased edges may go either way
    for dy in range(-6, 7):
        for dx in range(-6, 7):
            near |= np.roll(ink, (dy, dx), axis=(0, 1))
    assert found[~near].mean() < 0.001  # ...and no paper, even where the light falls off


def test_large_image_is_scaled_down_and_still_read():
    photo, _ = uneven_photo(1800, 2500, 4)
    res = to_ink(photo)
    assert res.scale == pytest.approx(images.MAX_SIDE / 2500) and res.input_size == (2500, 1800)
    assert res.mask.shape == (1152, 1600) and res.photo and np.count_nonzero(res.mask) > 1000
