"""The three-level views: boxes, settings from the environment, pixels, and the fusion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import transforms as T

from config.sections import LevelSettings
from config.settings import SettingsError, load_settings
from models import get_spec
from models.views import combine_levels, focused_box, prepare_views, view_boxes
from tests.conftest import noise_image

SPEC = get_spec("internvit")
DEFAULT = LevelSettings()


def test_defaults():
    assert (DEFAULT.internvit_focus_area, DEFAULT.internvit_tiles, DEFAULT.internvit_tile_overlap) == (0.5, (2, 2), 0.2)
    assert DEFAULT.internvit_level_weights == (0.5, 0.25, 0.25) and DEFAULT.n_views == 6


def test_boxes_of_a_square_image():
    boxes = view_boxes(512, 512, DEFAULT)
    assert boxes[0] == (0, 0, 512, 512)
    assert boxes[1] == (75, 75, 437, 437)  # 362 = round(512 * sqrt(0.5)); (512 - 362) // 2 = 75
    # tile side 512 / 1.8 = 284.4, step 227.6: rows and columns (0, 284) and (228, 512)
    assert boxes[2:] == [(0, 0, 284, 284), (228, 0, 512, 284), (0, 228, 284, 512), (228, 228, 512, 512)]


@settings(max_examples=200, deadline=None)
@given(
    w=st.integers(16, 4000),
    h=st.integers(16, 4000),
    area=st.floats(0.05, 1.0),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    overlap=st.floats(0.0, 0.6),
)
def test_box_geometry(w, h, area, rows, cols, overlap):
    cfg = LevelSettings(internvit_focus_area=area, internvit_tiles=(rows, cols), internvit_tile_overlap=overlap)
    boxes = view_boxes(w, h, cfg)
    assert len(boxes) == cfg.n_views == 2 + rows * cols
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= w and 0 <= top < bottom <= h
    # focused: centred, the image's aspect ratio, about `area` of it
    left, top, right, bottom = boxes[1]
    assert abs(left - (w - right)) <= 1 and abs(top - (h - bottom)) <= 1
    assert abs((right - left) - w * math.sqrt(area)) <= 1 and abs((bottom - top) - h * math.sqrt(area)) <= 1
    # tiles: row-major, cover the image, the first at the origin and the last at the far corner
    tiles = boxes[2:]
    assert tiles[0][:2] == (0, 0) and tiles[-1][2:] == (w, h)
    lefts = sorted({t[0] for t in tiles})
    rights = sorted({t[2] for t in tiles})
    assert len(lefts) == cols or w < 2 * cols  # tiny images may collapse neighbouring edges
    for a, b in zip(rights, lefts[1:]):
        assert b <= a, "a gap between neighbouring tiles"
    assert [t[1] for t in tiles] == sorted(t[1] for t in tiles)


def test_overlap_is_the_shared_fraction_of_a_tile():
    boxes = view_boxes(1000, 1000, LevelSettings(internvit_tiles=(1, 3), internvit_tile_overlap=0.25))[2:]
    widths = [b[2] - b[0] for b in boxes]
    assert widths == [400, 400, 400]  # 1000 / (3 - 2 * 0.25)
    assert [boxes[i][2] - boxes[i + 1][0] for i in range(2)] == [100, 100]  # 25% of 400
    no_overlap = view_boxes(1000, 600, LevelSettings(internvit_tiles=(2, 2), internvit_tile_overlap=0.0))[2:]
    assert no_overlap == [(0, 0, 500, 300), (500, 0, 1000, 300), (0, 300, 500, 600), (500, 300, 1000, 600)]


def test_focused_box_of_the_whole_area_is_the_image():
    assert focused_box(640, 360, 1.0) == (0, 0, 640, 360)
    assert focused_box(17, 16, 0.001) == (8, 7, 9, 8)  # at least one pixel


@pytest.mark.parametrize(("w", "h"), [(512, 512), (640, 360), (90, 700), (448, 448), (3000, 2000)])
def test_views_are_internvl_resizes_of_the_crops(w, h):
    img = noise_image(w, h, seed=w + h)
    views, boxes = prepare_views(img, SPEC, DEFAULT)
    assert views.shape == (6, 448, 448, 3) and views.dtype == np.uint8
    resize = T.Resize((448, 448), interpolation=T.InterpolationMode.BICUBIC)
    for view, box in zip(views, boxes):
        np.testing.assert_array_equal(view, np.asarray(resize(img.crop(box))))


def _unit(v):
    return v / np.linalg.norm(v)


def test_combine_levels_is_the_documented_fusion():
    rng = np.random.default_rng(0)
    vectors = np.stack([_unit(v) for v in rng.normal(size=(6, 8))]).astype(np.float32)
    out = combine_levels(vectors, DEFAULT)
    np.testing.assert_array_equal(out["global"], vectors[0])
    np.testing.assert_array_equal(out["focused"], vectors[1])
    np.testing.assert_array_equal(out["tiles"], vectors[2:])
    tiles = _unit(vectors[2:].mean(axis=0))
    expected = _unit(0.5 * vectors[0] + 0.25 * vectors[1] + 0.25 * tiles)
    np.testing.assert_allclose(out["combined"], expected, atol=1e-6)
    assert out["combined"].dtype == np.float32
    only_global = combine_levels(vectors, LevelSettings(internvit_level_weights=(1.0, 0.0, 0.0)))
    np.testing.assert_allclose(only_global["combined"], vectors[0], atol=1e-6)
    with pytest.raises(ValueError, match="expected 6 view vectors, got 5"):
        combine_levels(vectors[:5], DEFAULT)


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_INTERNVIT_FOCUS_AREA", "0.3")
    monkeypatch.setenv("IMAGE_EMBED_INTERNVIT_TILES", " 3X2 ")
    monkeypatch.setenv("IMAGE_EMBED_INTERNVIT_TILE_OVERLAP", "0")
    monkeypatch.setenv("IMAGE_EMBED_INTERNVIT_LEVEL_WEIGHTS", "1, 1, 2")
    cfg = load_settings()
    assert (cfg.internvit_focus_area, cfg.internvit_tiles, cfg.internvit_tile_overlap) == (0.3, (3, 2), 0.0)
    assert cfg.internvit_level_weights == (1.0, 1.0, 2.0) and cfg.n_views == 8
    assert cfg.describe_levels()["tiles"] == "3x2"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IMAGE_EMBED_INTERNVIT_FOCUS_AREA", "0", "focus area"),
        ("IMAGE_EMBED_INTERNVIT_FOCUS_AREA", "1.5", "focus area"),
        ("IMAGE_EMBED_INTERNVIT_FOCUS_AREA", "half", "not a number"),
        ("IMAGE_EMBED_INTERNVIT_TILES", "2", "must look like 2x2"),
        ("IMAGE_EMBED_INTERNVIT_TILES", "5x5", "1..4"),
        ("IMAGE_EMBED_INTERNVIT_TILES", "0x2", "1..4"),
        ("IMAGE_EMBED_INTERNVIT_TILE_OVERLAP", "1", "overlap"),
        ("IMAGE_EMBED_INTERNVIT_TILE_OVERLAP", "-0.1", "overlap"),
        ("IMAGE_EMBED_INTERNVIT_LEVEL_WEIGHTS", "1,2", "three numbers"),
        ("IMAGE_EMBED_INTERNVIT_LEVEL_WEIGHTS", "a,b,c", "three numbers"),
        ("IMAGE_EMBED_INTERNVIT_LEVEL_WEIGHTS", "1,-1,1", ">= 0"),
        ("IMAGE_EMBED_INTERNVIT_LEVEL_WEIGHTS", "0,0,0", "positive sum"),
    ],
)
def test_bad_settings_are_clear_errors(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()
