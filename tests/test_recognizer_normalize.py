"""MNIST-style normalisation: 20 px box, centre of mass at (14, 14), MNIST-like stroke width for any brush."""

import cv2
import numpy as np
import pytest
from skimage.morphology import skeletonize

from recognizer.images import to_ink
from recognizer import normalize
from recognizer.normalize import normalize_batch, normalize_digit
from recognizer.segment import segment
from mnist_fakes import REAL_MNIST as MNIST

# Stroke width (ink area / skeleton length, ink > 0.5) of real MNIST test digits: 5th, 50th, 95th percentile.
MNIST_SW = (1.74, 2.65, 4.38)


def stroke_width(img01: np.ndarray) -> float:
    ink = img01 > 0.5
    return ink.sum() / max(int(skeletonize(ink).sum()), 1)


def com(img01: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[: img01.shape[0], : img01.shape[1]]
    return float((img01 * yy).sum() / img01.sum()), float((img01 * xx).sum() / img01.sum())


def draw(shape: str, h: int, brush: int) -> np.ndarray:
    m = brush + 10
    img = np.full((h + 2 * m, h + 2 * m), 255, np.uint8)
    if shape == "7":
        pts = [(m, m), (m + int(0.6 * h), m), (m + int(0.2 * h), m + h)]
        cv2.polylines(img, [np.array(pts, np.int32)], False, 0, brush, cv2.LINE_AA)
    elif shape == "0":
        cv2.ellipse(img, (m + h // 3, m + h // 2), (h // 3, h // 2), 0, 0, 360, 0, brush, cv2.LINE_AA)
    else:  # "4"
        pts = [(m + int(0.3 * h), m), (m, m + int(0.65 * h)), (m + int(0.6 * h), m + int(0.65 * h))]
        cv2.polylines(img, [np.array(pts, np.int32)], False, 0, brush, cv2.LINE_AA)
        cv2.line(img, (m + int(0.45 * h), m + int(0.3 * h)), (m + int(0.45 * h), m + h), 0, brush, cv2.LINE_AA)
    return img


CASES = [(s, h, b) for s in ("7", "0", "4") for h in (30, 60, 120, 250, 400) for b in (4, 8, 15, 30) if b <= 0.3 * h]


@pytest.mark.parametrize("shape,h,brush", CASES)
def test_mnist_statistics_for_any_size_and_brush(shape, h, brush):
    segs = segment(to_ink(draw(shape, h, brush)).mask)
    assert len(segs) == 1
    out = normalize_digit(segs[0].mask)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0 and out.max() > 0.9
    ys, xs = np.nonzero(out > 0)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 == 20          # long side of the ink box: 20 px
    cy, cx = com(out)
    assert abs(cy - 14.0) <= 1.0 and abs(cx - 14.0) <= 1.0  # centre of mass, as in MNIST (13.99, 14.00)
    sw = stroke_width(out)
    assert MNIST_SW[0] <= sw <= MNIST_SW[2]                 # within MNIST's range (kept as written or redrawn)
    redrawn = normalize_batch([segs[0].mask], keep_ink=False)[0, :, :, 0]
    assert abs(stroke_width(redrawn) - MNIST_SW[1]) <= 0.8  # redrawn: near its median
    grey = np.count_nonzero((out > 0.05) & (out < 0.95))
    assert grey >= 10                                       # anti-aliased edges, not a binary image


def test_stroke_width_does_not_depend_on_brush_when_redrawn():
    masks = [segment(to_ink(draw("7", 250, b)).mask)[0].mask for b in (4, 30)]
    widths = [stroke_width(x[:, :, 0]) for x in normalize_batch(masks, keep_ink=False)]
    assert abs(widths[0] - widths[1]) <= 0.6


def pressure_zero(h: int, thin: int, thick: int) -> np.ndarray:
    """A 0 written as on paper: thick sides, thin top and bottom (a pen's pressure, a nib's angle)."""
    img = np.full((h + 60, h + 60), 255, np.uint8)
    c, ax = (30 + h // 3, 30 + h // 2), (h // 3, h // 2)
    cv2.ellipse(img, c, ax, 0, 0, 360, 0, thin, cv2.LINE_AA)
    for a0 in (150, -30):  # the left and right sides, drawn again with the thick pen
        cv2.ellipse(img, c, ax, 0, a0, a0 + 60, 0, thick, cv2.LINE_AA)
    return img


def side_and_top(img01: np.ndarray) -> tuple[int, int]:
    """Ink run length (> 0.5) across the left side (middle row) and across the top (middle column)."""
    ys, xs = np.nonzero(img01 > 0.5)
    row = img01[int(np.median(ys))] > 0.5
    col = img01[:, int(np.median(xs))] > 0.5
    left = np.argmax(~row[np.argmax(row):])
    top = np.argmax(~col[np.argmax(col):])
    return int(left), int(top)


def test_ink_of_mnist_width_is_kept_as_written():
    """A scanned or penned digit whose stroke is as wide as MNIST's keeps its own shape (pressure: thick
    sides, thin top) instead of being thinned and redrawn at one width."""
    mask = segment(to_ink(pressure_zero(120, thin=10, thick=20)).mask)[0].mask
    kept = normalize_digit(mask)
    redrawn = normalize_batch([mask], keep_ink=False)[0, :, :, 0]
    side, top = side_and_top(kept)
    assert side >= top + 2                                   # thick sides stay thicker than the top
    r_side, r_top = side_and_top(redrawn)
    assert abs(r_side - r_top) <= 1                          # the redraw evens them out
    assert not np.array_equal(kept, redrawn)


@pytest.mark.parametrize("h,brush", [(250, 4), (60, 15), (30, 8)])
def test_hairline_and_bold_ink_is_still_redrawn(h, brush):
    """Strokes outside MNIST's width range (a thin pen on a large digit, a bold brush on a small one) are
    thinned and redrawn, exactly as with keep_ink=False."""
    mask = segment(to_ink(draw("7", h, brush)).mask)[0].mask
    np.testing.assert_array_equal(normalize_digit(mask), normalize_batch([mask], keep_ink=False)[0, :, :, 0])


def test_aspect_ratio_is_kept():
    img = np.full((300, 300), 255, np.uint8)
    cv2.line(img, (150, 30), (150, 270), 0, 12)  # a "1": tall and thin
    out = normalize_digit(segment(to_ink(img).mask)[0].mask)
    ys, xs = np.nonzero(out > 0.2)
    assert np.ptp(ys) + 1 >= 19 and np.ptp(xs) + 1 <= 5


def test_batch_and_empty():
    b = normalize_batch([np.zeros((10, 10), np.uint8), np.full((5, 40), 255, np.uint8)])
    assert b.shape == (2, 28, 28, 1) and b.dtype == np.float32
    assert b[0].max() == 0.0 and b[1].max() > 0.5
    assert normalize_batch([]).shape == (0, 28, 28, 1)


@pytest.mark.skipif(not MNIST.is_file(), reason=f"real MNIST not found at {MNIST}")
def test_reference_numbers_match_real_mnist():
    x = np.load(MNIST)["x_test"][:1500].astype(np.float32) / 255.0
    sws = np.array([stroke_width(im) for im in x])
    p = np.percentile(sws, [5, 50, 95])
    assert np.allclose(p, MNIST_SW, atol=0.15), p
    coms = np.array([com(im) for im in x[:300]])
    assert np.allclose(coms.mean(0), (14.0, 14.0), atol=0.1)


@pytest.mark.skipif(not MNIST.is_file(), reason=f"real MNIST not found at {MNIST}")
def test_drawn_mnist_digits_normalise_back_to_mnist_statistics():
    from study.drawn import single_canvas

    x = np.load(MNIST)["x_test"][:60]
    rng = np.random.default_rng(5)
    sws, dists = [], []
    for im in x:
        canvas, _ = single_canvas(im, rng)
        segs = segment(to_ink(canvas).mask)
        out = normalize_digit(max(segs, key=lambda s: s.box[3]).mask)
        sws.append(stroke_width(out))
        # the redrawn digit should look like the original MNIST digit (same pixels mostly)
        a, b = out > 0.5, im > 127
        dists.append((a & b).sum() / max((a | b).sum(), 1))
    assert abs(np.median(sws) - MNIST_SW[1]) <= 0.4
    assert np.median(dists) >= 0.45  # intersection over union with the source digit


def bold_nine(loop_filled: bool) -> np.ndarray:
    """A 9 written with a pen so bold (or scanned so blurred) that its small loop filled in, or a plain one."""
    img = np.full((200, 140), 255, np.uint8)
    if loop_filled:
        cv2.circle(img, (70, 60), 32, 0, -1)
    else:
        cv2.circle(img, (70, 60), 28, 0, 8, cv2.LINE_AA)
    cv2.line(img, (98, 60), (90, 185), 0, 8, cv2.LINE_AA)
    return img


def normalised(img: np.ndarray) -> np.ndarray:
    segs = segment(to_ink(img).mask)
    assert len(segs) == 1
    return normalize_digit(segs[0].mask)


def test_a_filled_loop_stays_a_blob_instead_of_thinning_to_a_bare_tail(monkeypatch):
    kept = normalised(bold_nine(loop_filled=True))
    monkeypatch.setattr(normalize, "BLOB_RATIO", np.inf)  # the thinning alone
    bare = normalised(bold_nine(loop_filled=True))
    head = (slice(4, 14), slice(4, 24))                   # the upper half of the 20 px box, where the loop was
    assert (kept[head] > 0.5).sum() >= 2 * (bare[head] > 0.5).sum()
    ys, xs = np.nonzero(kept > 0.5)
    top = ys < np.median(ys)
    assert (kept > 0.5)[ys[top].min():ys[top].max() + 1, xs[top].min():xs[top].max() + 1].mean() > 0.6  # filled


def test_digits_without_blobs_are_redrawn_exactly_as_before(monkeypatch):
    imgs = [bold_nine(loop_filled=False)] + [draw(s, h, b) for s, h, b in CASES[::4]]
    with_rule = [normalised(img) for img in imgs]
    monkeypatch.setattr(normalize, "BLOB_RATIO", np.inf)
    for img, out in zip(imgs, with_rule):
        np.testing.assert_array_equal(out, normalised(img))


@pytest.mark.skipif(not MNIST.is_file(), reason=f"real MNIST not found at {MNIST}")
def test_most_mnist_digits_are_kept_as_written():
    """KEEP_RADIUS is MNIST's own range: most of its digits, drawn as ink, come back nearly as they were."""
    from study.mnist_ink import UPSCALE, ink_mask

    x = np.load(MNIST)["x_test"][:300]
    masks = [ink_mask(im, UPSCALE).astype(np.uint8) * 255 for im in x]
    kept = normalize_batch(masks)[:, :, :, 0]
    redrawn = normalize_batch(masks, keep_ink=False)[:, :, :, 0]
    share = np.mean([not np.array_equal(a, b) for a, b in zip(kept, redrawn)])
    assert 0.75 <= share <= 0.95, share
    iou = [((a > 0.5) & (b > 127)).sum() / max(((a > 0.5) | (b > 127)).sum(), 1) for a, b in zip(kept, x)]
    assert np.median(iou) >= 0.72  # kept ink is the digit as written (all redrawn: 0.66 on these)
