"""The NumPy image operations of the normaliser give OpenCV's pixels (the models were trained on those)."""

import cv2
import numpy as np
import pytest

from recognizer import raster


@pytest.mark.parametrize("size", range(1, 18))
def test_ellipse_kernel_is_opencvs(size):
    np.testing.assert_array_equal(raster.ellipse_kernel(size),
                                  cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))


def test_dilation_is_opencvs():
    rng = np.random.default_rng(1)
    for _ in range(80):
        img = np.where(rng.random((int(rng.integers(5, 90)), int(rng.integers(5, 90)))) < 0.03, 255, 0).astype(np.uint8)
        size = int(rng.integers(1, 18))
        ref = cv2.dilate(img, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
        np.testing.assert_array_equal(raster.dilate_ellipse(img, size), ref)


def test_gaussian_is_opencvs_exactly():
    rng = np.random.default_rng(2)
    for shape in ((3, 3), (7, 40), (96, 80)):
        img = (rng.random(shape) * 255).astype(np.uint8)
        np.testing.assert_array_equal(raster.gaussian5(img), cv2.GaussianBlur(img, (5, 5), 0))


def test_bounding_box_is_opencvs():
    rng = np.random.default_rng(3)
    for _ in range(50):
        img = np.where(rng.random((30, 40)) < rng.random() * 0.05, 255, 0).astype(np.uint8)
        assert raster.bounding_box(img) == tuple(cv2.boundingRect(img))


def test_resize_within_one_grey_level_of_opencv():
    rng = np.random.default_rng(4)
    differing = total = 0
    for _ in range(120):
        h, w = int(rng.integers(3, 200)), int(rng.integers(3, 200))
        img = np.zeros((h, w), np.uint8)
        for _ in range(3):
            p0, p1 = (tuple(int(v) for v in rng.integers(0, max(h, w), 2)) for _ in range(2))
            cv2.line(img, p0, p1, 255, int(rng.integers(1, 20)))
        for target in (72, 20):
            s = target / max(h, w)
            size = (max(1, round(w * s)), max(1, round(h * s)))
            ref = cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            out = raster.resize(img, *size)
            assert out.shape == ref.shape
            d = np.abs(out.astype(int) - ref.astype(int))
            assert d.max() <= 1
            differing += np.count_nonzero(d)
            total += d.size
    assert differing / total < 0.01  # and rarely even that


def test_framed_gaussian_is_opencvs_on_the_zero_padded_image():
    rng = np.random.default_rng(5)
    for pad in (3, 12):
        for shape in ((1, 1), (5, 9), (72, 50)):
            img = (rng.random(shape) * 255).astype(np.uint8)
            ref = cv2.GaussianBlur(cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0), (5, 5), 0)
            np.testing.assert_array_equal(raster.gaussian5_framed(img, pad), ref)
    with pytest.raises(ValueError, match="at least 3"):
        raster.gaussian5_framed(np.zeros((4, 4), np.uint8), 2)
