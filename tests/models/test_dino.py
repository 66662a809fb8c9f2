"""DINOv2 / DINOv3: the store folder is what transformers loads, and DinoModel equals the
transformers reference pipeline (image processor + model + pooler_output + L2 norm).

DINOv2: transformers has a PIL backend for its processor (BitImageProcessorPil); ours is bit-exact
with it. DINOv3's processor resizes a float tensor (torchvision, antialiased bilinear): given the
same pixels ours equals the reference to 1e-5, and end to end every pixel is within one uint8
level of the reference and the vectors' cosine is >= 0.999.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import get_spec
from models.device import CPU
from models.dino import CONFIG_FILE, PROCESSOR_FILE, WEIGHTS_FILE, DinoModel, processor_kwargs
from models.preprocess import prepare_image, prepare_images
from models.store import model_dir
from tests.conftest import noise_image, photo

TOL = 1e-5
END_TO_END_MIN_COSINE = 0.999
KEYS = ("dinov2", "dinov2_giant", "dinov3")
CLASSES = {"dinov2": "Dinov2Model", "dinov2_giant": "Dinov2Model", "dinov3": "DINOv3ViTModel"}
fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def images():
    return [
        photo(),
        photo().resize((640, 360)),
        noise_image(640, 360, seed=1),
        noise_image(200, 500, seed=2),
        noise_image(301, 300, seed=3),  # odd margin: floor and round crops differ
        noise_image(100, 90, seed=4),  # smaller than the input: upsampled
    ]


@pytest.fixture(scope="module")
def dirs(tiny_models):
    return {key: model_dir(get_spec(key)) for key in KEYS}


@pytest.fixture(scope="module")
def ours(dirs):
    return {key: DinoModel(get_spec(key), dirs[key], CPU) for key in KEYS}


@pytest.fixture(scope="module")
def reference(dirs):
    from transformers import AutoModel

    return {key: AutoModel.from_pretrained(str(dirs[key])).eval() for key in KEYS}


def processor(folder, backend: str | None = None, **overrides):
    from transformers import AutoImageProcessor

    kwargs = {"backend": backend} if backend else {}
    return AutoImageProcessor.from_pretrained(str(folder), **kwargs, **overrides)


def reference_vectors(model, pixel_values: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        pooled = model(pixel_values=pixel_values).pooler_output
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


@pytest.mark.parametrize("key", KEYS)
def test_store_folder_is_what_transformers_loads(dirs, reference, key):
    folder = dirs[key]
    for name in (CONFIG_FILE, WEIGHTS_FILE, PROCESSOR_FILE):
        assert (folder / name).is_file(), name
    assert not list(folder.glob("*.bin")), "weights must be safetensors only"
    assert type(reference[key]).__name__ == CLASSES[key]
    spec = get_spec(key)
    assert json.loads((folder / CONFIG_FILE).read_text())["hidden_size"] == spec.output_dim
    stored = json.loads((folder / PROCESSOR_FILE).read_text())
    for name, value in processor_kwargs(spec).items():
        assert stored[name] == value, name


def test_dinov2_processor_is_the_checkpoints_one(dirs):
    stored = json.loads((dirs["dinov2"] / PROCESSOR_FILE).read_text())
    assert stored["image_processor_type"] == "BitImageProcessor"
    assert stored["size"] == {"shortest_edge": 256} and stored["crop_size"] == {"height": 224, "width": 224}
    assert stored["resample"] == 3 and stored["do_center_crop"] is True


def test_dinov3_processor_is_the_checkpoints_one(dirs):
    stored = json.loads((dirs["dinov3"] / PROCESSOR_FILE).read_text())
    assert stored["image_processor_type"] == "DINOv3ViTImageProcessor"
    assert stored["size"] == {"height": 224, "width": 224}
    assert stored["resample"] == 2 and not stored.get("do_center_crop")


# --- DINOv2: bit-exact with transformers' PIL backend --------------------------------------------


@fast
@given(w=st.integers(16, 700), h=st.integers(16, 700), seed=st.integers(0, 2**16))
def test_dinov2_pixels_equal_the_pil_processor(dirs, w, h, seed):
    """Resize to 256 (PIL bicubic) and the numpy center crop (offsets rounded down), bit for bit."""
    img = noise_image(w, h, seed)
    pil = processor(dirs["dinov2"], "pil", do_rescale=False, do_normalize=False)
    assert type(pil).__name__ == "BitImageProcessorPil"
    expected = pil(images=img, return_tensors="np")["pixel_values"][0].transpose(1, 2, 0)
    np.testing.assert_array_equal(prepare_image(img, get_spec("dinov2")), expected.astype(np.uint8))
    assert np.array_equal(expected, expected.astype(np.uint8))  # it really was whole numbers


@pytest.mark.parametrize("key", ["dinov2", "dinov2_giant"])
@pytest.mark.parametrize("index", range(6))
def test_dinov2_parity_with_the_pil_pipeline(dirs, ours, reference, index, key):
    img = images()[index]
    pixel_values = processor(dirs[key], "pil")(images=img, return_tensors="pt")["pixel_values"]
    expected = reference_vectors(reference[key], pixel_values)
    got = ours[key].encode_images(prepare_images([img], get_spec(key)))
    assert got.shape == (1, get_spec(key).output_dim)
    assert np.abs(got - expected).max() < TOL


@pytest.mark.parametrize("index", range(6))
def test_dinov2_close_to_the_default_torchvision_pipeline(dirs, ours, reference, index):
    """AutoImageProcessor's default backend resizes with torchvision: a few pixels differ by one
    uint8 level from PIL's; the vectors agree to 1e-3 (cosine >= 0.999)."""
    img = images()[index]
    pixel_values = processor(dirs["dinov2"])(images=img, return_tensors="pt")["pixel_values"]
    expected = reference_vectors(reference["dinov2"], pixel_values)
    got = ours["dinov2"].encode_images(prepare_images([img], get_spec("dinov2")))
    assert float((got * expected).sum()) >= END_TO_END_MIN_COSINE
    assert np.abs(got - expected).max() < 1e-3


# --- DINOv3: exact given the same pixels; within one uint8 level end to end ------------------------


@pytest.mark.parametrize("index", range(6))
def test_dinov3_equals_the_reference_on_the_same_pixels(dirs, ours, reference, index):
    """Our uint8 pixels through the reference processor (no resize: rescale + normalize), the
    reference model and pooler_output equal our runner's vector to 1e-5."""
    spec = get_spec("dinov3")
    pixels = prepare_images([images()[index]], spec)
    pixel_values = processor(dirs["dinov3"], do_resize=False)(images=list(pixels), return_tensors="pt")["pixel_values"]
    expected = reference_vectors(reference["dinov3"], pixel_values)
    assert np.abs(ours["dinov3"].encode_images(pixels) - expected).max() < TOL


@fast
@given(w=st.integers(16, 700), h=st.integers(16, 700), seed=st.integers(0, 2**16))
def test_dinov3_pixels_within_one_level_of_the_float_resize(dirs, w, h, seed):
    img = noise_image(w, h, seed)
    reference_pixels = processor(dirs["dinov3"], do_normalize=False)(images=img, return_tensors="np")["pixel_values"][0]
    ours = prepare_image(img, get_spec("dinov3")).transpose(2, 0, 1) / 255.0
    diff = np.abs(ours - reference_pixels)
    # one uint8 level, plus the reference's own float32 error: hypothesis found a 1.2e-5 overshoot
    assert diff.max() <= 1.0 / 255 + 1e-4
    assert diff.mean() <= 0.5 / 255  # rounding to uint8, not a different filter


@pytest.mark.parametrize("index", range(6))
def test_dinov3_end_to_end_close_to_the_full_reference(dirs, ours, reference, index):
    img = images()[index]
    pixel_values = processor(dirs["dinov3"])(images=img, return_tensors="pt")["pixel_values"]
    expected = reference_vectors(reference["dinov3"], pixel_values)
    got = ours["dinov3"].encode_images(prepare_images([img], get_spec("dinov3")))
    assert float((got * expected).sum()) >= END_TO_END_MIN_COSINE


# --- both ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS)
def test_pooling_is_the_cls_token_after_the_final_norm(dirs, ours, reference, key):
    spec = get_spec(key)
    pixels = prepare_images(images()[:2], spec)
    with torch.no_grad():
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)
        x = (x - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
        out = reference[key](pixel_values=x, output_hidden_states=True)
        model = reference[key]
        final_norm = model.layernorm if key.startswith("dinov2") else model.norm
        cls = final_norm(out.hidden_states[-1])[:, 0]
    assert torch.allclose(cls, out.pooler_output, atol=1e-6)
    expected = torch.nn.functional.normalize(cls, dim=-1).numpy()
    assert np.abs(ours[key].encode_images(pixels) - expected).max() < TOL


@pytest.mark.parametrize("key", KEYS)
def test_outputs_are_float32_unit_vectors_that_depend_on_the_input(ours, key):
    vectors = ours[key].encode_images(prepare_images(images(), get_spec(key)))
    assert vectors.dtype == np.float32 and vectors.shape == (6, get_spec(key).output_dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for a in range(len(vectors)):
        for b in range(a + 1, len(vectors)):
            assert np.abs(vectors[a] - vectors[b]).max() > 1e-3


@pytest.mark.parametrize("key", KEYS)
def test_batch_equals_one_by_one(ours, key):
    batch = prepare_images(images(), get_spec(key))
    together = ours[key].encode_images(batch)
    apart = np.concatenate([ours[key].encode_images(batch[i : i + 1]) for i in range(len(batch))])
    assert np.abs(together - apart).max() < TOL


@pytest.mark.parametrize("key", KEYS)
def test_weights_are_the_seeded_ones(dirs, tmp_path, key):
    from safetensors.torch import load_file

    from models.dino import materialize

    materialize(get_spec(key), tmp_path)
    stored, again = load_file(str(dirs[key] / WEIGHTS_FILE)), load_file(str(tmp_path / WEIGHTS_FILE))
    assert stored.keys() == again.keys()
    assert all(torch.equal(stored[k], again[k]) for k in stored)
