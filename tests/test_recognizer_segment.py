"""Segmentation on images the test draws itself with cv2: grouping, splitting, order, specks, polarity, blank."""

import cv2
import numpy as np
import pytest

from recognizer.images import to_ink
from recognizer.segment import segment, stroke_width


def canvas(w=640, h=480):
    return np.full((h, w), 255, np.uint8)


def line(img, pts, width=10):
    cv2.polylines(img, [np.array(pts, np.int32)], False, 0, width, cv2.LINE_AA)
    return img


def draw_1(img, x, y, h, width=10):
    return line(img, [(x, y), (x, y + h)], width)


def draw_0(img, x, y, h, width=10, aspect=0.67):
    a = int(aspect * h / 2)
    cv2.ellipse(img, (x + a, y + h // 2), (a, h // 2), 0, 0, 360, 0, width, cv2.LINE_AA)
    return img


def draw_7(img, x, y, h, width=10):
    return line(img, [(x, y), (x + int(0.6 * h), y), (x + int(0.2 * h), y + h)], width)


def draw_4_two_strokes(img, x, y, h, width=10, gap=12):
    # stroke 1: down, then across; stroke 2: a separate vertical line right of the corner, not touching
    line(img, [(x, y), (x, y + int(0.6 * h)), (x + int(0.45 * h), y + int(0.6 * h))], width)
    return line(img, [(x + int(0.45 * h) + width + gap, y + int(0.1 * h)),
                      (x + int(0.45 * h) + width + gap, y + h)], width)


def draw_5_detached_bar(img, x, y, h, width=10, gap=14):
    body = [(x + 2, y + gap + width), (x, y + int(0.45 * h)), (x + int(0.3 * h), y + int(0.4 * h)),
            (x + int(0.5 * h), y + int(0.55 * h)), (x + int(0.5 * h), y + int(0.8 * h)),
            (x + int(0.3 * h), y + h), (x, y + int(0.9 * h))]
    line(img, body, width)
    return line(img, [(x + width + gap // 2, y), (x + int(0.55 * h), y)], width)


def boxes(img):
    ink = to_ink(img)
    return [s.box for s in segment(ink.mask, photo=ink.photo)]


def test_well_separated_digits_in_reading_order():
    img = canvas()
    draw_7(img, 300, 150, 200)
    draw_1(img, 100, 140, 210)
    draw_0(img, 470, 150, 200)
    b = boxes(img)
    assert len(b) == 3
    xs = [x for x, _, _, _ in b]
    assert xs == sorted(xs)
    assert abs(b[0][0] - 95) <= 3 and abs(b[0][3] - 220) <= 4   # the 1: x from 100 - width/2, full height
    assert abs(b[1][0] - 295) <= 3                               # the 7


@pytest.mark.parametrize("width", [4, 10, 24])
def test_two_stroke_4_and_detached_bar_5_stay_one_digit(width):
    img = canvas()
    draw_4_two_strokes(img, 80, 100, 250, width)
    draw_5_detached_bar(img, 380, 100, 250, width)
    segs = segment(to_ink(img).mask)
    assert len(segs) == 2
    four, five = segs
    assert four.box[0] < 100 and four.box[0] + four.box[2] > 80 + 0.45 * 250 + width
    assert five.box[1] <= 100 and five.box[3] >= 245  # bar and body in one box
    assert np.count_nonzero(four.mask) > 0 and four.mask.shape == (four.box[3], four.box[2])


@pytest.mark.parametrize("bar", ["slanted", "off_to_the_right"])
def test_a_fives_flat_bar_joins_its_body(bar):
    """A 5's top bar is flat, so never a digit of its own: slanted (half as tall as the body) and mostly
    beside it, or drawn well away to the right at its top, it still joins the body; a 1 stays apart."""
    img = canvas()
    line(img, [(205, 272), (190, 330), (230, 320), (258, 360), (250, 440), (215, 470), (185, 455)], 12)
    if bar == "slanted":
        line(img, [(245, 250), (350, 205), (455, 160)], 12)   # 102 px tall: 0.49 of the body
    else:
        line(img, [(350, 240), (420, 236)], 12)               # 80 px (0.38 of the body) right of it
    draw_1(img, 560, 250, 220, 12)
    b = boxes(img)
    assert len(b) == 2, b
    five, one = b
    assert five[0] <= 180 and five[0] + five[2] >= (455 if bar == "slanted" else 420) and five[1] <= 230
    assert abs(one[0] - 554) <= 3


def test_flat_strokes_do_not_swallow_a_lone_dash_far_away():
    """A flat mark far from every digit (more than half a digit height away) is not glued to one."""
    img = canvas()
    draw_1(img, 100, 150, 200, 10)
    line(img, [(300, 160), (360, 160)], 10)
    assert len(boxes(img)) == 2


def test_seven_with_detached_crossbar_and_one_with_flag():
    img = canvas()
    draw_7(img, 100, 100, 250)
    line(img, [(120, 225), (200, 225)])  # crossbar crossing the stem
    line(img, [(400, 100), (400, 350)])  # 1 ...
    line(img, [(400, 100), (370, 130)])  # ... with a flag
    line(img, [(370, 350), (430, 350)])  # ... and a base
    assert len(boxes(img)) == 2


def test_touching_digits_are_split_but_a_wide_digit_is_not():
    img = canvas()
    draw_0(img, 60, 100, 240, aspect=0.8)
    draw_0(img, 60 + 200, 100, 240, aspect=0.8)  # the two 0s touch (box aspect 1.66)
    draw_1(img, 520, 100, 240)
    b = boxes(img)
    assert len(b) == 3
    assert abs(b[0][0] + b[0][2] - 262) <= 12  # cut near the joint
    assert 180 <= b[1][2] <= 215
    wide = canvas()
    cv2.ellipse(wide, (300, 240), (190, 110), 0, 0, 360, 0, 12, cv2.LINE_AA)  # wide 0, aspect 1.7: 2 runs
    assert len(boxes(wide)) == 1
    flat = line(canvas(), [(100, 300), (560, 300), (540, 400)])                   # wide flat stroke, 1 run
    assert len(boxes(flat)) == 1


def test_two_rows_are_two_lines_top_to_bottom():
    img = canvas(640, 640)
    for i, x in enumerate((80, 280, 480)):
        draw_1(img, x + 40, 300 + 40 + (i % 2) * 12, 200)  # lower row, a little jitter
        draw_7(img, x, 60 + (i % 2) * 10, 200)              # upper row
    segs = segment(to_ink(img).mask)
    assert [s.line for s in segs] == [0, 0, 0, 1, 1, 1]
    assert [s.box[0] for s in segs[:3]] == sorted(s.box[0] for s in segs[:3])
    assert all(s.box[1] < 300 for s in segs[:3]) and all(s.box[1] > 300 for s in segs[3:])


def test_specks_are_ignored():
    img = canvas()
    draw_7(img, 250, 120, 240)
    rng = np.random.default_rng(3)
    for _ in range(25):
        cv2.circle(img, (int(rng.integers(0, 640)), int(rng.integers(0, 480))), 2, 0, -1)
    cv2.line(img, (40, 40), (40, 60), 0, 6)  # a short stray mark far from the digit
    b = boxes(img)
    assert len(b) == 1 and abs(b[0][3] - 250) <= 4


def test_polarity_white_on_black_gives_the_same_boxes():
    img = canvas()
    draw_1(img, 100, 100, 200)
    draw_7(img, 300, 100, 200)
    assert boxes(255 - img) == boxes(img)
    rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    assert boxes(rgb) == boxes(img)


def test_polarity_when_bold_ink_covers_most_of_a_small_image():
    img = np.full((40, 30), 250, np.uint8)
    cv2.line(img, (15, 12), (15, 27), 10, 20)  # ink covers ~58% of the image, not the frame
    assert np.mean(img < 128) > 0.5
    b = boxes(img)
    assert len(b) == 1 and b[0][3] >= 34 and b[0][2] <= 22
    assert boxes(255 - img) == b


@pytest.mark.parametrize("value", [0, 255, 128])
def test_blank_images_have_no_digits(value):
    assert boxes(np.full((300, 400), value, np.uint8)) == []


def test_faint_noise_is_blank():
    rng = np.random.default_rng(0)
    img = np.clip(200 + rng.normal(0, 4, (300, 400)), 0, 255).astype(np.uint8)
    assert boxes(img) == []


def test_photo_with_uneven_light():
    h, w = 480, 640
    yy, xx = np.mgrid[:h, :w]
    paper = 90 + 140 * (xx / w) + 20 * (yy / h)          # dark left, bright right
    ink_img = canvas()
    draw_1(ink_img, 100, 120, 220, 8)
    draw_7(ink_img, 280, 120, 220, 8)
    draw_0(ink_img, 470, 120, 220, 8)
    ink = (255 - ink_img) / 255.0
    rng = np.random.default_rng(1)
    photo = paper * (1 - 0.75 * ink) + rng.normal(0, 3, (h, w))
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    assert to_ink(photo).photo
    b = boxes(photo)
    assert len(b) == 3
    assert [x for x, *_ in b] == sorted(x for x, *_ in b)
    # the sheet lies on a dark table: its edge must not be taken for a (huge) digit
    photo[:, 628:] = 30
    ink = to_ink(photo)
    assert len(segment(ink.mask, photo=ink.photo)) == 3


def test_small_digits_in_a_corner_of_a_large_canvas():
    img = canvas(3000, 2400)   # scaled down internally
    draw_7(img, 2850, 2300, 60, 6)
    draw_1(img, 2800, 2300, 60, 6)
    ink = to_ink(img)
    assert ink.scale < 1
    assert len(segment(ink.mask)) == 2


def test_stroke_width_of_a_bar_a_ring_and_nothing():
    """Ink area over half the contour length (through the border pixels' centres, outer and hole borders)."""
    bar = np.zeros((60, 260), np.uint8)
    bar[20:30, 30:230] = 255  # 10 x 200 px: area 2,000, contour 2 * (9 + 199) = 416
    assert stroke_width(bar) == pytest.approx(2 * 2000 / 416)
    ring = np.zeros((200, 200), np.uint8)
    cv2.circle(ring, (100, 100), 70, 255, 12)  # a ring 12-13 px wide: both its borders count
    assert 11.0 <= stroke_width(ring) <= 13.5
    assert stroke_width(np.zeros((9, 9), np.uint8)) == 0.0
    assert stroke_width(np.full((1, 1), 255, np.uint8)) == 2.0  # a lone pixel: no contour to speak of
