"""The NumPy thinning gives scikit-image's pixels (the shipped models were trained on those), alone or batched."""

import cv2
import numpy as np
import pytest
from skimage.morphology import skeletonize as skimage_skeletonize

from recognizer.skeleton import skeletonize, thin


def strokes(rng, h, w, n=3):
    img = np.zeros((h, w), np.uint8)
    for _ in range(n):
        p0, p1 = (tuple(int(v) for v in rng.integers(0, max(h, w), 2)) for _ in range(2))
        cv2.line(img, p0, p1, 255, int(rng.integers(1, 25)))
    return img


def test_same_pixels_as_scikit_image_on_strokes_and_noise():
    rng = np.random.default_rng(5)
    for i in range(120):
        h, w = int(rng.integers(3, 120)), int(rng.integers(3, 120))
        img = strokes(rng, h, w) if i % 3 else (rng.random((h, w)) < 0.5).astype(np.uint8)
        np.testing.assert_array_equal(skeletonize(img), skimage_skeletonize(img > 0))


def test_a_batch_is_thinned_like_each_image_alone():
    rng = np.random.default_rng(6)
    batch = np.stack([strokes(rng, 64, 80) for _ in range(12)])
    out = skeletonize(batch)
    assert out.shape == batch.shape and out.dtype == bool
    for img, sk in zip(batch, out):
        np.testing.assert_array_equal(sk, skimage_skeletonize(img > 0))


def test_ink_touching_the_border_and_edge_cases():
    full = np.ones((9, 9), np.uint8)
    np.testing.assert_array_equal(skeletonize(full), skimage_skeletonize(full > 0))
    assert not skeletonize(np.zeros((5, 7), np.uint8)).any()
    dot = np.zeros((5, 5), np.uint8)
    dot[2, 2] = 1
    np.testing.assert_array_equal(skeletonize(dot), dot > 0)  # a single pixel stays
    bar = np.zeros((20, 40), np.uint8)
    bar[8:13, 3:37] = 1
    sk = skeletonize(bar)
    assert sk.sum() >= 28 and np.ptp(np.nonzero(sk)[0]) <= 1  # a thick bar becomes a one-pixel line


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        skeletonize(np.zeros(10, np.uint8))


def test_radius_is_half_the_stroke_width_along_a_bar_and_zero_for_a_hairline():
    for half in (1, 3, 6):
        bar = np.zeros((2 * half + 9, 60), np.uint8)
        bar[4:4 + 2 * half + 1, 5:55] = 1
        sk, radius = thin(bar)
        middle = radius[sk][np.abs(np.nonzero(sk)[1] - 30) < 15]  # away from the receding ends
        assert middle.size and np.all(np.abs(middle.astype(int) - half) <= 1), (half, middle)
        assert not radius[~sk].any()
    line = np.zeros((20, 20), np.uint8)
    line[10, 2:18] = 1
    sk, radius = thin(line)
    assert sk.sum() > 10 and not radius.any()


def test_radius_of_a_filled_loop_is_its_own_not_the_strokes():
    img = np.zeros((90, 60), np.uint8)
    cv2.circle(img, (30, 25), 14, 1, -1)              # a loop filled in: a disc of radius 14
    cv2.line(img, (40, 30), (40, 85), 1, 5)           # its tail, a stroke of width 5
    sk, radius = thin(img)
    ys = np.nonzero(sk)[0]
    blob, tail = radius[sk][ys < 30].max(), np.median(radius[sk][ys > 50])
    assert 1 <= tail <= 3 and blob >= 8 and blob >= 3 * tail  # rounds of peeling: about chessboard distance


def test_thin_batched_equals_one_by_one():
    rng = np.random.default_rng(3)
    imgs = [(rng.random((30, 30)) < 0.6).astype(np.uint8) for _ in range(4)]
    sk, radius = thin(np.stack(imgs))
    for k, img in enumerate(imgs):
        s1, r1 = thin(img)
        np.testing.assert_array_equal(sk[k], s1)
        np.testing.assert_array_equal(radius[k], r1)
