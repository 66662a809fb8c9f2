"""Parity: ClipModel loaded from the store equals open_clip's own pipeline on the same weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from config.sections import IntakeSettings
from intake.decode import decode_image
from models import get_spec
from models.clip import CONFIG_FILE, WEIGHTS_FILE, ClipModel
from models.device import CPU
from models.preprocess import prepare_images
from models.store import model_dir
from tests.conftest import encode, noise_image, photo

SPEC = get_spec("clip", "tiny")
TEXTS = ["a photo of an astronaut", "a cat", "", "x " * 200]  # empty and over-long included
TOL = 1e-5


@pytest.fixture(scope="module")
def clip_dir(tiny_models):
    return model_dir(SPEC)


@pytest.fixture(scope="module")
def ours(clip_dir):
    return ClipModel(SPEC, clip_dir, CPU)


@pytest.fixture(scope="module")
def reference(clip_dir):
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{clip_dir}")
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(f"local-dir:{clip_dir}")


def rgba_image():
    """A translucent PNG as the server sees it: through the intake's decode, which drops alpha."""
    img = noise_image(300, 260, seed=11).convert("RGBA")
    img.putalpha(Image.fromarray(np.linspace(0, 255, 300 * 260).astype(np.uint8).reshape(260, 300)))
    decoded = decode_image(encode(img, "PNG"), IntakeSettings()).image
    assert decoded.mode == "RGB"
    return decoded


def images():
    return [photo(), noise_image(640, 360, seed=1), noise_image(200, 500, seed=2), rgba_image()]


def reference_vectors(reference, imgs) -> np.ndarray:
    model, preprocess, _ = reference
    with torch.no_grad():
        features = model.encode_image(torch.stack([preprocess(img) for img in imgs]))
    return torch.nn.functional.normalize(features, dim=-1).numpy()


def test_store_folder_is_an_open_clip_local_dir(clip_dir):
    assert (clip_dir / WEIGHTS_FILE).is_file()
    config = json.loads((clip_dir / CONFIG_FILE).read_text())
    assert config["model_cfg"] == SPEC.arch_config
    assert config["preprocess_cfg"] == {
        "size": SPEC.input_size,
        "mean": list(SPEC.mean),
        "std": list(SPEC.std),
        "interpolation": SPEC.interpolation,
        "resize_mode": SPEC.resize_mode,
    }


def test_reference_uses_the_spec_preprocessing(reference):
    from torchvision import transforms as T

    _, preprocess, _ = reference
    resize = next(t for t in preprocess.transforms if isinstance(t, T.Resize))
    normalize = next(t for t in preprocess.transforms if isinstance(t, T.Normalize))
    assert resize.size == SPEC.input_size and resize.interpolation == T.InterpolationMode.BICUBIC
    assert tuple(normalize.mean) == SPEC.mean and tuple(normalize.std) == SPEC.std


@pytest.mark.parametrize("index", range(4), ids=["astronaut", "landscape", "portrait", "rgba"])
def test_image_parity_with_open_clip(ours, reference, index):
    img = images()[index]
    got = ours.encode_images(prepare_images([img], SPEC))
    expected = reference_vectors(reference, [img])
    assert got.shape == (1, SPEC.output_dim)
    assert np.abs(got - expected).max() < TOL


def test_text_parity_with_open_clip(ours, reference):
    model, _, tokenizer = reference
    got = ours.encode_texts(TEXTS)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model.encode_text(tokenizer(TEXTS)), dim=-1).numpy()
    assert got.shape == (len(TEXTS), SPEC.output_dim)
    assert np.abs(got - expected).max() < TOL


def test_outputs_are_float32_unit_vectors(ours):
    for vectors in (ours.encode_images(prepare_images(images(), SPEC)), ours.encode_texts(TEXTS)):
        assert vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_outputs_depend_on_the_input(ours):
    """Random weights still separate inputs: parity is not comparing constants."""
    vectors = ours.encode_images(prepare_images(images(), SPEC))
    texts = ours.encode_texts(TEXTS[:2])
    for a in range(len(vectors)):
        for b in range(a + 1, len(vectors)):
            assert np.abs(vectors[a] - vectors[b]).max() > 1e-3
    assert np.abs(texts[0] - texts[1]).max() > 1e-3


def test_batch_equals_one_by_one(ours):
    batch = prepare_images(images() + [photo()], SPEC)
    together = ours.encode_images(batch)
    apart = np.concatenate([ours.encode_images(batch[i : i + 1]) for i in range(len(batch))])
    assert np.abs(together - apart).max() < TOL
    texts_together = ours.encode_texts(TEXTS)
    texts_apart = np.concatenate([ours.encode_texts([t]) for t in TEXTS])
    assert np.abs(texts_together - texts_apart).max() < TOL


def test_loaded_model_is_in_eval_mode_on_the_chosen_device(ours):
    assert ours.model.training is False
    assert ours.dtype == torch.float32
    assert next(ours.model.parameters()).device.type == "cpu"
    assert ours.device is CPU


def test_weights_are_the_seeded_ones(clip_dir, tmp_path):
    """Materializing the tiny spec again reproduces the stored weights exactly."""
    from safetensors.torch import load_file

    from models.clip import materialize

    materialize(SPEC, tmp_path)
    stored, again = load_file(str(clip_dir / WEIGHTS_FILE)), load_file(str(tmp_path / WEIGHTS_FILE))
    assert stored.keys() == again.keys()
    assert all(torch.equal(stored[k], again[k]) for k in stored)
