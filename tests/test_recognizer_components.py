"""components() against OpenCV: the same labels (numbering included) and stats on random masks and edge cases."""

import cv2
import numpy as np
import pytest

from recognizer.components import components


def assert_like_opencv(mask):
    n_cv, labels_cv, stats_cv, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    n, labels, stats = components(mask)
    assert n == n_cv
    assert labels.dtype == np.int32 and labels.shape == mask.shape
    assert stats.dtype == np.int32 and stats.shape == (n, 5)
    np.testing.assert_array_equal(labels, labels_cv)
    np.testing.assert_array_equal(stats, stats_cv)
    return n, labels, stats


def blobs(rng, shape, density, sigma):
    """Ink blobs of a given share of the area: smoothed noise above its quantile (isolated pixels at sigma 0)."""
    noise = rng.normal(size=shape)
    if sigma:
        noise = cv2.GaussianBlur(noise, (0, 0), sigma)
    return noise > np.quantile(noise, 1 - density)


@pytest.mark.parametrize("seed", range(200))
def test_random_masks_match_opencv(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in rng.integers(1, 160, 2))
    density = float(rng.choice([0.01, 0.1, 0.3, 0.5, 0.7, 0.95]))
    mask = blobs(rng, shape, density, float(rng.choice([0, 0, 1, 3])))
    dtype = rng.choice([np.uint8, bool, np.int32])
    assert_like_opencv((mask * (255 if dtype == np.uint8 else 1)).astype(dtype))


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (1, 40), (40, 1)])
def test_empty_mask_is_all_background(shape):
    n, labels, stats = assert_like_opencv(np.zeros(shape, np.uint8))
    assert n == 1 and not labels.any()


@pytest.mark.parametrize("shape", [(1, 1), (6, 9)])
def test_all_ink_is_one_component(shape):
    n, labels, stats = assert_like_opencv(np.full(shape, 255, np.uint8))
    assert n == 2 and (labels == 1).all() and list(stats[1]) == [0, 0, shape[1], shape[0], shape[0] * shape[1]]


def test_one_pixel():
    mask = np.zeros((9, 11), np.uint8)
    mask[4, 7] = 1
    n, _, stats = assert_like_opencv(mask)
    assert n == 2 and list(stats[1]) == [7, 4, 1, 1, 1]


@pytest.mark.parametrize("transpose", [False, True])
def test_one_row_or_column(transpose):
    row = np.array([[1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1]], np.uint8)
    n, _, _ = assert_like_opencv(row.T.copy() if transpose else row)
    assert n == 5


def test_diagonal_contacts_join_pieces():
    mask = np.eye(12, dtype=np.uint8)[:, ::-1] | np.eye(12, dtype=np.uint8)  # an X: diagonal steps only
    mask[0, 5] = mask[1, 6] = 1                                               # and a diagonal pair apart
    n, labels, _ = assert_like_opencv(mask)
    assert n == 3
    checker = (np.indices((20, 30)).sum(axis=0) % 2).astype(np.uint8)         # touching only at corners
    n, _, _ = assert_like_opencv(checker)
    assert n == 2


def spiral(size, width):
    """A square spiral drawn inwards, 2*width between turns: one long path whose runs join over many rounds."""
    pts, lo, hi = [(0, 0)], 0, size - 1 - width // 2
    while hi - lo > 2 * width:
        pts += [(hi, lo), (hi, hi), (lo, hi)]
        lo += 2 * width
        pts += [(lo - 2 * width, lo), (hi - 2 * width, lo)]
        hi -= 2 * width
    mask = np.zeros((size, size), np.uint8)
    cv2.polylines(mask, [np.array(pts, np.int32)], False, 1, width, cv2.LINE_8)
    return mask


@pytest.mark.parametrize("size,width", [(41, 1), (200, 2), (301, 3)])
def test_spiral(size, width):
    n, _, _ = assert_like_opencv(spiral(size, width))
    assert n == 2


def test_comb_joined_at_the_bottom():
    mask = np.zeros((300, 400), np.uint8)
    mask[:, ::2] = 1
    mask[-1] = 1
    n, _, _ = assert_like_opencv(mask)
    assert n == 2


def test_large_noisy_mask():
    rng = np.random.default_rng(1)
    mask = blobs(rng, (1200, 1600), 0.2, 2.0).astype(np.uint8) * 255
    n, _, _ = assert_like_opencv(mask)
    assert n > 1000


def test_rejects_non_2d():
    with pytest.raises(ValueError):
        components(np.zeros((2, 2, 2), np.uint8))


def test_strided_and_fortran_order_views():
    rng = np.random.default_rng(2)
    mask = blobs(rng, (90, 120), 0.4, 1.0).astype(np.uint8)
    view = mask[5:80:2, 100:3:-3]
    n, labels, stats = components(view)
    assert_like_opencv(np.ascontiguousarray(view))
    np.testing.assert_array_equal(components(np.asfortranarray(view))[1], labels)
