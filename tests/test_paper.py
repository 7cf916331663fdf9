"""Paper preparation (recognizer/paper.py) on small generated pages: each paper condition of issue 36 on its own.

The pages are drawn here with OpenCV's Hershey fonts (digits a pen could write) on paper made with NumPy, so the
tests need no data set; reading them with the shipped string reader is tested in test_paper_reading.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from recognizer.paper import STRIP_HEIGHT, find_lines, flatten, ink_mask, number_lines, prepare_paper, remove_rules


def page(text: str = "47", size: int = 60, paper: float = 235.0, ink: float = 40.0, width: int = 320,
         height: int = 140, gradient: float = 0.0, thickness: int = 4, noise: float = 2.0, seed: int = 0):
    """A grey page with `text` written at the middle-left; `gradient` darkens the right side by that share."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width), paper, np.float32)
    if gradient:
        img *= 1.0 - gradient * np.linspace(0, 1, width, dtype=np.float32)[None, :]
    mask = np.zeros((height, width), np.uint8)
    scale = size / 22.0
    cv2.putText(mask, text, (30, height // 2 + size // 2), cv2.FONT_HERSHEY_SIMPLEX, scale / 1.0, 255, thickness,
                cv2.LINE_AA)
    a = mask.astype(np.float32) / 255.0
    img = img * (1 - a) + ink * a
    img += rng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def ink_rows(mask: np.ndarray) -> tuple[int, int]:
    rows = np.nonzero(mask.any(axis=1))[0]
    return int(rows[0]), int(rows[-1])


def test_flat_paper_flattens_to_no_ink():
    blank = np.full((100, 200), 200, np.uint8) + np.random.default_rng(1).integers(0, 4, (100, 200)).astype(np.uint8)
    assert prepare_paper(blank).lines == []


def test_light_gradient_leaves_no_ink_on_the_dark_side():
    """A phone photo's light falls off across the page: the dark side is paper, not ink."""
    img, truth = page(gradient=0.55)
    m = ink_mask(flatten(img))
    outside = (m > 0) & (cv2.dilate(truth, np.ones((5, 5), np.uint8)) == 0)
    assert outside.mean() < 0.002
    assert (m[truth > 128] > 0).mean() > 0.9
    assert len(prepare_paper(img).lines) == 1


def test_faint_ink_on_grey_paper_is_kept_whole():
    """A light pen on grey paper: 25 grey levels of contrast. The strokes stay, at full strength in the strip."""
    img, truth = page(paper=170.0, ink=145.0, noise=1.5)
    m = ink_mask(flatten(img))
    assert (m[truth > 128] > 0).mean() > 0.85
    lines = prepare_paper(img).lines
    assert len(lines) == 1
    assert lines[0].strip.max() > 0.95  # faint ink reaches the strength of firm ink
    assert lines[0].strip.shape[0] == STRIP_HEIGHT


def test_ruling_lines_are_removed_and_do_not_make_lines_of_text():
    """Ruled paper: lines across the whole page above and below the number, and one through it."""
    img, truth = page()
    for y in (20, 70, 118):
        cv2.line(img, (0, y), (img.shape[1] - 1, y + 3), 120, 2)  # slightly tilted, as scanned
    cleaned = remove_rules(ink_mask(flatten(img)))
    top, bottom = ink_rows(truth)
    assert not cleaned[:top - 3].any() and not cleaned[bottom + 4:].any()
    found = find_lines(cleaned)
    assert len(found) == 1 and found[0][0] >= top - 3 and found[0][1] <= bottom + 4
    assert (cleaned[truth > 128] > 0).mean() > 0.8  # the digits keep most of their ink


def test_a_scan_border_and_a_column_rule_are_not_ink():
    img, truth = page()
    img[:, :25] = 15                                  # a scanner's black edge
    cv2.line(img, (290, 0), (291, img.shape[0] - 1), 90, 2)  # the column's rule
    p = prepare_paper(img)
    assert len(p.lines) == 1
    x, y, w, h = p.lines[0].box
    assert x >= 20 and x + w <= 292
    assert not p.ink[:, :22].any()


def test_a_scan_border_wider_than_the_paper_does_not_invert_the_page():
    """A register crop is often more scanner border than paper (114 of the 2,697 validation pages): the picture's
    median is then dark, and the page was read as light ink on dark paper: nothing but the border's edge."""
    img, truth = page(width=320)
    img = np.hstack([np.full((img.shape[0], 400), 12, np.uint8), img])  # 56% of the picture is border
    assert np.median(img) < 128
    p = prepare_paper(img)
    assert len(p.lines) == 1
    x, y, w, h = p.lines[0].box
    assert x >= 400 and w < 200  # the number, not the border
    assert (p.ink[:, 400:][truth > 128] > 0).mean() > 0.8  # the digits' ink is there


def test_light_ink_on_dark_paper_is_still_read_as_ink():
    """Light strokes on a dark board: most of the picture is dark and touches the frame, and it is the paper."""
    img, truth = page(paper=30.0, ink=220.0)
    p = prepare_paper(img)
    assert len(p.lines) == 1
    assert (p.ink[truth > 128] > 0).mean() > 0.8


def test_small_print_does_not_make_the_numbers_own_strokes_rules():
    """A register's printed footer is dozens of pieces a few pixels high; counted piece by piece they made the
    writing's height 7 px, and the vertical bars of a 44 written 30 px high were erased as rules."""
    img, truth = page("44", size=60, height=200)
    for x in range(10, 300, 9):  # a line of small print near the bottom: 32 pieces 5 px high
        cv2.rectangle(img, (x, 180), (x + 4, 185), 60, -1)
    cleaned = remove_rules(ink_mask(flatten(img)))
    assert (cleaned[truth > 128] > 0).mean() > 0.85


def test_a_broken_faint_column_rule_does_not_join_the_page_into_one_line():
    """A register's column rule is often faded into dashes, one pixel wide and slightly tilted: its pieces must go,
    or the row profile joins the whole page into one line and the number is squeezed to nothing."""
    img, truth = page(height=260)
    for y0 in range(0, img.shape[0], 40):  # 28 px of rule, 12 px gap
        cv2.line(img, (300, y0), (301, min(img.shape[0] - 1, y0 + 27)), 150, 1)
    p = prepare_paper(img)
    top, bottom = ink_rows(truth)
    assert len(p.lines) == 1
    x, y, w, h = p.lines[0].box
    assert x + w <= 298 and y >= top - 0.5 * (bottom - top) and y + h <= bottom + 0.5 * (bottom - top)
    assert not p.ink[:, 296:].any()


def test_a_dotted_column_rule_beside_the_number_does_not_make_the_page_one_line():
    """Some registers rule their columns with dots: pieces a few pixels long that no rule finder takes for a line.
    They put ink in every row, so the row profile made the whole page one line, squeezed into a strip where the
    number was a few marks the reader read as nothing (66 of 2,697 validation pages read nothing, half of them so).
    """
    img, truth = page(height=260)
    for y0 in range(0, img.shape[0], 9):  # dots 4 px long every 9 px, a little tilted, 12 px left of the number
        cv2.line(img, (18, y0), (18 + y0 // 130, y0 + 3), 90, 2)
    p = prepare_paper(img)
    top, bottom = ink_rows(truth)
    numbers = [line for line in p.lines if line.box[1] <= top and line.box[1] + line.box[3] >= bottom]
    assert len(numbers) == 1
    assert numbers[0].box[3] <= 2.0 * (bottom - top)


def test_small_print_and_lines_the_picture_cuts_are_not_read_as_the_number():
    """A register row: the number, a printed footer in small type, the bottom of the row above cut by the top edge,
    a digit of the next column cut by the right edge. Only the number's line is read; a picture of one line keeps
    it however tightly it is cropped."""
    img, truth = page(height=220)
    cv2.putText(img, "1934 Tryk", (40, 210), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 60, 2)  # small print: half the size
    cv2.putText(img, "58", (60, 28), cv2.FONT_HERSHEY_SIMPLEX, 2.6, 40, 5)          # the row above, cut in half
    lines = prepare_paper(img).lines
    assert len(lines) == 3 and lines[0].cut and not lines[1].cut and not lines[2].cut
    kept = number_lines(lines)
    top, bottom = ink_rows(truth)
    assert len(kept) == 1 and top - 20 <= kept[0].box[1] <= top
    side, _ = page(height=300)
    cv2.putText(side, "0", (side.shape[1] - 22, 270), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 40, 5)  # the next column's
    lines = prepare_paper(side).lines
    assert len(lines) == 2 and lines[1].cut and len(number_lines(lines)) == 1 and number_lines(lines)[0] is lines[0]
    tight, _ = page(height=140)
    cut = prepare_paper(tight[50:100]).lines  # cropped through the digits: they touch both edges
    assert len(cut) == 1 and cut[0].cut and number_lines(cut) == cut


def test_touching_digits_stay_one_line_strip():
    """Digits written into each other are one piece: the strip keeps them together for the string reader."""
    img, _ = page("200", thickness=7)
    lines = prepare_paper(img).lines
    assert len(lines) == 1
    assert lines[0].strip.shape[1] > 1.5 * STRIP_HEIGHT


def test_two_numbers_on_two_lines_give_two_strips_top_first():
    a, _ = page("12", height=100)
    b, _ = page("345", height=100)
    lines = prepare_paper(np.vstack([a, b])).lines
    assert len(lines) == 2
    assert lines[0].box[1] < 100 <= lines[1].box[1]
    assert lines[1].strip.shape[1] > lines[0].strip.shape[1]


@pytest.mark.parametrize("shape", [(20000, 1), (1, 20000), (3, 3)])
def test_degenerate_pages_give_no_lines_and_no_error(shape):
    img = np.full(shape, 255, np.uint8)
    img[shape[0] // 2, shape[1] // 2] = 0
    assert prepare_paper(img).lines == []
