"""Detections on the wire, the letterbox mapping, and the "most prominent" rules (synthetic boxes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from models.detection import (
    MAX_DETECTIONS,
    MIN_FACE_PROBABILITY,
    MIN_PERSON_SCORE,
    Detection,
    from_canvas,
    pack,
    prominent_face,
    prominent_person,
)
from models.preprocess import letterbox, letterbox_size


def det(box, score):
    return Detection(box=tuple(box), score=score)


# --- the prominent-person rule: largest area x score among scores >= MIN_PERSON_SCORE ---------


def test_prominent_person_is_largest_area_times_score():
    big_doubtful = det((0, 0, 100, 100), 0.55)  # 10000 * 0.55 = 5500
    small_sure = det((0, 0, 50, 50), 0.99)  # 2500 * 0.99 = 2475
    medium = det((0, 0, 80, 80), 0.9)  # 6400 * 0.9 = 5760
    assert prominent_person([big_doubtful, small_sure, medium]) == medium
    assert prominent_person([big_doubtful, small_sure]) == big_doubtful


def test_prominent_person_ignores_scores_below_the_threshold():
    huge_but_unsure = det((0, 0, 1000, 1000), MIN_PERSON_SCORE - 0.01)
    tiny_sure = det((0, 0, 10, 10), 0.95)
    assert prominent_person([huge_but_unsure, tiny_sure]) == tiny_sure
    assert prominent_person([huge_but_unsure]) is None
    assert prominent_person([]) is None
    at_threshold = det((0, 0, 5, 5), MIN_PERSON_SCORE)
    assert prominent_person([at_threshold]) == at_threshold


def test_prominent_person_ties_go_to_the_higher_score_then_the_first():
    a = det((0, 0, 100, 100), 0.8)  # 8000
    b = det((0, 0, 80, 125), 0.8)  # 8000, same score
    c = det((0, 0, 160, 100), 0.5)  # 8000, lower score
    assert prominent_person([c, a, b]) == a
    assert prominent_person([b, a]) == b


def test_prominent_face_is_the_largest_confident_face():
    small_sure = det((0, 0, 20, 20), 0.999)
    large = det((50, 50, 150, 160), 0.95)
    unsure_huge = det((0, 0, 300, 300), MIN_FACE_PROBABILITY - 0.05)
    assert prominent_face([small_sure, large, unsure_huge]) == large
    assert prominent_face([unsure_huge]) is None
    equal_area = det((200, 200, 300, 310), 0.99)
    assert prominent_face([large, equal_area]) == equal_area  # same area: the surer one


# --- wire format ---------------------------------------------------------------------------


def test_pack_sorts_by_score_and_pads_with_zeros():
    boxes = np.array([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5]], dtype=np.float32)
    rows = pack(boxes, np.array([0.2, 0.9, 0.5]))
    assert rows.shape == (MAX_DETECTIONS, 5) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[:3, 4], np.float32([0.9, 0.5, 0.2]))
    np.testing.assert_array_equal(rows[0, :4], [2, 2, 3, 3])
    assert not rows[3:].any()


def test_pack_keeps_the_best_rows_and_handles_none():
    scores = np.linspace(0.01, 1, 50)
    rows = pack(np.zeros((50, 4)), scores)
    assert rows.shape == (MAX_DETECTIONS, 5)
    assert rows[0, 4] == np.float32(1.0) and rows[-1, 4] == np.float32(scores[50 - MAX_DETECTIONS])
    assert not pack(np.zeros((0, 4)), np.zeros(0)).any()
    with pytest.raises(ValueError):
        pack(np.zeros((2, 4)), np.zeros(3))


def test_from_canvas_maps_back_to_image_pixels():
    # a 400 x 200 image on an 800 canvas is scaled x2: canvas (100, 40, 300, 120) -> (50, 20, 150, 60)
    rows = pack(np.array([[100, 40, 300, 120]]), np.array([0.9]))
    (found,) = from_canvas(rows, (400, 200), 800)
    assert found.box == (50, 20, 150, 60) and found.score == pytest.approx(0.9)


def test_from_canvas_clips_offsets_and_drops_empty_boxes():
    rows = pack(
        np.array([[-10, -10, 900, 700], [700, 500, 790, 600], [10, 10, 10.2, 50]]),  # the 2nd is in the padding
        np.array([0.9, 0.8, 0.7]),
    )
    found = from_canvas(rows, (400, 200), 800, offset=(30, 5))
    assert [d.box for d in found] == [(30, 5, 430, 205)]


def test_letterbox_pastes_top_left_on_black():
    img = Image.new("RGB", (400, 100), (200, 100, 50))
    board = letterbox(img, 200, "bilinear")
    assert board.size == (200, 200)
    arr = np.asarray(board)
    assert (arr[:50, :200] == (200, 100, 50)).all()
    assert not arr[50:].any()
    assert letterbox_size(400, 100, 200) == (200, 50)
    assert letterbox_size(1, 1000, 640) == (1, 640)


@given(
    w=st.integers(16, 3000),
    h=st.integers(16, 3000),
    canvas=st.sampled_from([160, 640, 800]),
    frac=st.tuples(*[st.floats(0, 1)] * 4),
)
def test_a_box_survives_the_round_trip_within_a_pixel_of_scale(w, h, canvas, frac):
    """Image box -> canvas box (as a detector would see it) -> back: off by at most one canvas pixel."""
    x0, x1 = sorted((frac[0] * w, frac[1] * w))
    y0, y1 = sorted((frac[2] * h, frac[3] * h))
    new_w, new_h = letterbox_size(w, h, canvas)
    sx, sy = new_w / w, new_h / h
    rows = pack(np.array([[x0 * sx, y0 * sy, x1 * sx, y1 * sy]]), np.array([1.0]))
    found = from_canvas(rows, (w, h), canvas)
    tol = max(1.0 / sx, 1.0 / sy) + 1
    for d in found:
        assert 0 <= d.box[0] < d.box[2] <= w and 0 <= d.box[1] < d.box[3] <= h
        assert abs(d.box[0] - x0) <= tol and abs(d.box[2] - x1) <= tol
        assert abs(d.box[1] - y0) <= tol and abs(d.box[3] - y1) <= tol
    if x1 - x0 > 2 * tol and y1 - y0 > 2 * tol:
        assert len(found) == 1
