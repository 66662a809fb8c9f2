"""Preprocessing reproduces torchvision's (and so open_clip's) eval transform bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision import transforms as T

from models import get_spec
from models.preprocess import center_crop, prepare_image, prepare_images, resize_shortest, to_model_input
from tests.conftest import noise_image, photo

SPEC = get_spec("clip", "tiny")
MODES = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}
sides = st.integers(min_value=16, max_value=700)
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def reference(img: Image.Image, size: int, interpolation: str) -> np.ndarray:
    pipeline = T.Compose([T.Resize(size, interpolation=MODES[interpolation]), T.CenterCrop(size)])
    return np.asarray(pipeline(img))


def ours(img: Image.Image, size: int, interpolation: str) -> np.ndarray:
    return np.asarray(center_crop(resize_shortest(img, size, interpolation), size))


@fast
@given(w=sides, h=sides, seed=st.integers(0, 2**16))
def test_resize_and_crop_match_torchvision_bicubic(w, h, seed):
    img = noise_image(w, h, seed)
    np.testing.assert_array_equal(ours(img, 224, "bicubic"), reference(img, 224, "bicubic"))


@fast
@given(w=sides, h=sides)
def test_resize_and_crop_match_torchvision_bilinear(w, h):
    img = noise_image(w, h, seed=w * 1000 + h)
    np.testing.assert_array_equal(ours(img, 224, "bilinear"), reference(img, 224, "bilinear"))


@fast
@given(side=sides, size=st.sampled_from([32, 224, 448]), interpolation=st.sampled_from(["bicubic", "bilinear"]))
def test_squares_match_torchvision(side, size, interpolation):
    img = noise_image(side, side, seed=side)
    np.testing.assert_array_equal(ours(img, size, interpolation), reference(img, size, interpolation))


@pytest.mark.parametrize(
    ("w", "h"), [(224, 224), (224, 700), (700, 224), (225, 224), (224, 225), (16, 700), (700, 16), (333, 517), (517, 333)]
)
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_edge_sizes_match_torchvision(w, h, interpolation):
    img = noise_image(w, h, seed=3)
    np.testing.assert_array_equal(ours(img, 224, interpolation), reference(img, 224, interpolation))


def test_resize_shortest_keeps_orientation_and_ratio():
    assert resize_shortest(noise_image(400, 300), 224, "bicubic").size == (298, 224)
    assert resize_shortest(noise_image(300, 400), 224, "bicubic").size == (224, 298)
    img = noise_image(224, 500)
    assert resize_shortest(img, 224, "bicubic") is img  # nothing to do: no resampling


def test_center_crop_rounding_and_refusal():
    img = Image.fromarray(np.arange(5 * 8, dtype=np.uint8).reshape(5, 8))
    cropped = np.asarray(center_crop(img, 3))
    # torchvision: top = round((5-3)/2) = 1, left = round((8-3)/2) = round(2.5) = 2
    np.testing.assert_array_equal(cropped, np.asarray(img)[1:4, 2:5])
    with pytest.raises(ValueError, match="cannot center-crop 8x5"):
        center_crop(img, 6)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK"])
def test_prepare_image_dtype_and_shape(mode):
    img = noise_image(300, 200).convert(mode)
    out = prepare_image(img, SPEC)
    assert out.dtype == np.uint8
    assert out.shape == (SPEC.input_size, SPEC.input_size, 3)
    expected = reference(img.convert("RGB"), SPEC.input_size, SPEC.interpolation)
    np.testing.assert_array_equal(out, expected)


def test_prepare_images_stacks_in_order():
    images = [photo(), noise_image(640, 480, 1), noise_image(100, 900, 2)]
    batch = prepare_images(images, SPEC)
    assert batch.dtype == np.uint8 and batch.shape == (3, 224, 224, 3)
    for i, img in enumerate(images):
        np.testing.assert_array_equal(batch[i], prepare_image(img, SPEC))
    assert prepare_images([], SPEC).shape == (0, 224, 224, 3)


@pytest.mark.parametrize(("w", "h"), [(300, 200), (200, 300), (224, 224), (50, 60)])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_squash_mode_matches_torchvision(w, h, interpolation):
    spec = dataclasses.replace(SPEC, resize_mode="squash", interpolation=interpolation)
    img = noise_image(w, h, seed=5)
    expected = np.asarray(T.Resize((224, 224), interpolation=MODES[interpolation])(img))
    out = prepare_image(img, spec)
    np.testing.assert_array_equal(out, expected)
    if (w, h) != (224, 224):  # squash keeps all content: differs from shortest + crop
        assert not np.array_equal(out, prepare_image(img, SPEC))


def test_to_model_input_equals_to_tensor_and_normalize():
    images = [photo(), noise_image(640, 480, 1), noise_image(224, 224, 2)]
    batch = prepare_images(images, SPEC)
    x = to_model_input(batch, SPEC, device="cpu", dtype=torch.float32)
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.float32
    to_tensor = T.Compose([T.ToTensor(), T.Normalize(SPEC.mean, SPEC.std)])
    expected = torch.stack([to_tensor(Image.fromarray(a)) for a in batch])
    assert torch.equal(x, expected)


def test_full_pipeline_equals_open_clip_transform():
    from open_clip.transform import image_transform

    transform = image_transform(
        SPEC.input_size, is_train=False, mean=SPEC.mean, std=SPEC.std,
        resize_mode=SPEC.resize_mode, interpolation=SPEC.interpolation,
    )
    images = [photo(), noise_image(500, 301, 4), noise_image(90, 400, 6).convert("RGBA")]
    x = to_model_input(prepare_images(images, SPEC), SPEC, device="cpu", dtype=torch.float32)
    expected = torch.stack([transform(img) for img in images])
    assert torch.equal(x, expected)


def test_to_model_input_casts_to_the_requested_dtype():
    batch = prepare_images([photo()], SPEC)
    half = to_model_input(batch, SPEC, device="cpu", dtype=torch.float16)
    full = to_model_input(batch, SPEC, device="cpu", dtype=torch.float32)
    assert half.dtype == torch.float16
    assert torch.equal(half, full.to(torch.float16))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((1, 224, 224, 3), dtype=np.float32),
        np.zeros((1, 224, 224, 3), dtype=np.int64),
        np.zeros((224, 224, 3), dtype=np.uint8),
        np.zeros((1, 224, 224, 4), dtype=np.uint8),
        np.zeros((1, 3, 224, 224), dtype=np.uint8),
    ],
)
def test_to_model_input_rejects_wrong_batches(bad):
    with pytest.raises(ValueError, match=r"expected a uint8 \(n, h, w, 3\) batch"):
        to_model_input(bad, SPEC, device="cpu", dtype=torch.float32)


def test_to_model_input_accepts_non_contiguous_batches():
    batch = prepare_images([photo(), noise_image(300, 300)], SPEC)
    flipped = batch[:, :, ::-1]  # a view with negative strides
    x = to_model_input(flipped, SPEC, device="cpu", dtype=torch.float32)
    assert torch.equal(x, to_model_input(np.ascontiguousarray(flipped), SPEC, device="cpu", dtype=torch.float32))


def test_alpha_is_dropped_before_resizing():
    """Like the intake's decode: RGBA -> RGB first, then resize (open_clip resizes RGBA with
    premultiplied alpha and drops it after, which differs for translucent pixels)."""
    img = noise_image(300, 260, seed=11).convert("RGBA")
    img.putalpha(Image.fromarray(np.linspace(0, 255, 300 * 260).astype(np.uint8).reshape(260, 300)))
    np.testing.assert_array_equal(prepare_image(img, SPEC), prepare_image(img.convert("RGB"), SPEC))


def test_center_crop_floor_rounding_of_transformers():
    """transformers' numpy crop: top = (h - size) // 2; torchvision rounds half to even."""
    img = Image.fromarray(np.arange(6 * 9, dtype=np.uint8).reshape(6, 9))
    # margins 3 (rows) and 6 (cols) for a 3x3 crop: floor -> (1, 3), round(1.5)=2, round(3.0)=3
    np.testing.assert_array_equal(np.asarray(center_crop(img, 3, "floor")), np.asarray(img)[1:4, 3:6])
    np.testing.assert_array_equal(np.asarray(center_crop(img, 3, "round")), np.asarray(img)[2:5, 3:6])
    with pytest.raises(ValueError, match="unsupported crop rounding 'ceil'"):
        center_crop(img, 3, "ceil")


@pytest.mark.parametrize(("w", "h"), [(301, 300), (300, 301), (640, 360), (100, 90), (256, 256)])
def test_resize_size_resizes_beyond_the_crop(w, h):
    """DINOv2's rule: short side to 256, then the central 224 (offsets rounded down)."""
    spec = dataclasses.replace(SPEC, resize_size=256, crop_rounding="floor")
    img = noise_image(w, h, seed=9)
    expected = center_crop(resize_shortest(img, 256, "bicubic"), 224, "floor")
    out = prepare_image(img, spec)
    np.testing.assert_array_equal(out, np.asarray(expected))
    assert out.shape == (224, 224, 3)
    assert not np.array_equal(out, prepare_image(img, SPEC))  # differs from CLIP's 224 + round
