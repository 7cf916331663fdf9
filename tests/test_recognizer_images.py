"""recognizer.images: loading, grey levels, polarity, the clean-picture thresholds and hysteresis, the photo path
and large images, on images the tests draw themselves (with Pillow, as a user's file would come)."""

from __future__ import annotations

import numpy as np
import pytest

from recognizer import images
from recognizer.images import binarize, load_gray, rgb_to_gray, to_ink


# ------------------------------------------------------------------------------------------- test images
def strokes(h: int, w: int, n: int, rng, width=(2, 14)) -> np.ndarray:
    """Antialiased random pen strokes, ink = 255 on 0 (drawn with Pillow, at twice the size and shrunk)."""
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
    for _ in range(8):
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
def test_grey_levels_of_colours_and_transparency():
    """BT.601 weights (0.299 R + 0.587 G + 0.114 B), alpha composited onto white paper first."""
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [40, 40, 40]]], np.uint8)
    assert rgb_to_gray(rgb).tolist() == [[76, 150, 29, 255, 40]]
    opaque = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert load_gray(opaque).tolist() == [[76, 150, 29, 255, 40]]
    half = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])  # half transparent: halfway to white
    assert load_gray(half).tolist() == [[165, 202, 141, 255, 147]]
    ink_on_nothing = np.zeros((20, 20, 4), np.uint8)  # white ink on a transparent layer: the alpha is the ink
    ink_on_nothing[5:15, 9:11] = 255
    gray = load_gray(ink_on_nothing)
    assert gray[5:15, 9:11].max() == 0 and gray.min() == 0 and np.count_nonzero(gray == 255) == 400 - 20


@pytest.mark.parametrize("light", [True, False])
def test_thresholds_count_the_level_from_the_paper_side(light):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for level in (100, 100.5, 100.4, 0):
        mask = images._above(gray, level, light)
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        ink = gray[mask > 0]
        if light:   # dark ink on light paper: ink is stronger than `level` where 255 - gray > level
            assert ink.max() == int(np.ceil(255 - level)) - 1 and ink.min() == 0
        else:       # light ink on dark paper: gray > level
            assert ink.min() == int(np.floor(level)) + 1 and ink.max() == 255


def test_both_polarities_and_every_path_give_clean_masks():
    seen = set()
    for i, g in enumerate(synthetic_images()):
        mask, photo, blank = binarize(g)
        assert mask.dtype == np.uint8 and mask.shape == g.shape and set(np.unique(mask)) <= {0, 255}, i
        assert blank == (not mask.any()), i
        seen.add("blank" if blank else "photo" if photo else "clean")
    assert seen == {"blank", "photo", "clean"}
    rng = np.random.default_rng(7)
    ink = strokes(200, 300, 5, rng)
    dark_on_light, light_on_dark = binarize(255 - ink)[0], binarize(ink)[0]
    assert np.array_equal(dark_on_light, light_on_dark)  # polarity is found, the strokes are the same
    # strong: more than half the contrast (> 127.5); the antialiased rims above a quarter (> 63.75) join them
    assert np.array_equal(dark_on_light > 0, ink >= 64) and np.count_nonzero((ink >= 64) & (ink < 128)) > 100


def test_photo_close_fills_a_pinhole_in_a_stroke():
    photo, _ = uneven_photo(240, 320, 5)
    photo[100:108, 40:280] = 40     # a dark bar across the paper...
    photo[103:105, 160] = 200       # ...with a pinhole of paper that the local threshold alone leaves open
    res = to_ink(photo)
    assert res.photo and res.mask[100:108, 150:170].all()


def test_a_hairline_on_a_large_image_survives_the_scaling_down():
    g = np.full((1000, 3200), 255, np.uint8)
    g[200:800, 1600] = 0             # one pixel wide: halved, it fades to mid-grey but stays
    g[500, 400:1000] = 0
    res = to_ink(g)
    assert res.scale == pytest.approx(0.5) and res.mask.shape == (500, 1600)
    assert res.mask[100:400, 800].all() and res.mask[250, 200:500].all()


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
