"""InternViT (timm): the store folder is what timm loads, the simple extractor equals timm's own
pipeline (resolve_data_config + create_transform, forward_features, mean of the patch tokens),
and every level of the three-level extractor equals running that view alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from config.sections import LevelSettings
from models import get_spec
from models.device import CPU
from models.preprocess import prepare_images, to_model_input
from models.store import model_dir
from models.timm_vit import CONFIG_FILE, WEIGHTS_FILE, InternVitModel, expected_data_config
from models.views import combine_levels, prepare_views
from tests.conftest import noise_image, photo

SPEC = get_spec("internvit")
TOL = 1e-5


def images():
    return [photo(), photo().resize((640, 360)), noise_image(200, 500, seed=2), noise_image(449, 450, seed=3)]


@pytest.fixture(scope="module")
def folder(tiny_models):
    return model_dir(SPEC)


@pytest.fixture(scope="module")
def ours(folder):
    return InternVitModel(SPEC, folder, CPU)


@pytest.fixture(scope="module")
def reference(folder):
    """timm's own loader on the stored file, and timm's own eval transform for it."""
    import timm

    config = json.loads((folder / CONFIG_FILE).read_text())
    model = timm.create_model(
        config["architecture"],
        pretrained=True,
        pretrained_cfg_overlay={**config["pretrained_cfg"], "file": str(folder / WEIGHTS_FILE)},
        **config["model_args"],
    ).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    return model, transform


def timm_vectors(model, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        tokens = model.forward_features(x)
    pooled = tokens[:, model.num_prefix_tokens :].mean(dim=1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def test_store_folder(folder, reference):
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["architecture"] == "vit_intern300m_patch14_448"
    assert config["model_args"] == SPEC.arch_config
    assert "hf_hub_id" not in config["pretrained_cfg"]  # random weights do not claim the hub's name
    model, _ = reference
    assert model.embed_dim == SPEC.output_dim and model.num_prefix_tokens == 1


def test_timm_data_config_is_the_spec(reference):
    import timm

    model, transform = reference
    data = timm.data.resolve_data_config({}, model=model)
    expected = expected_data_config(SPEC)
    assert list(data["input_size"]) == expected["input_size"]
    assert (data["interpolation"], data["crop_pct"], data["crop_mode"]) == ("bicubic", 1.0, "center")
    assert tuple(data["mean"]) == SPEC.mean and tuple(data["std"]) == SPEC.std


@pytest.mark.parametrize("index", range(4))
def test_pixels_equal_timms_eval_transform(reference, index):
    _, transform = reference
    img = images()[index]
    x = to_model_input(prepare_images([img], SPEC), SPEC, device="cpu", dtype=torch.float32)
    assert torch.equal(x[0], transform(img))


@pytest.mark.parametrize("index", range(4))
def test_simple_extractor_equals_timm(ours, reference, index):
    model, transform = reference
    img = images()[index]
    got = ours.encode_images(prepare_images([img], SPEC))
    expected = timm_vectors(model, transform(img)[None])
    assert got.shape == (1, SPEC.output_dim) and got.dtype == np.float32
    assert np.abs(got - expected).max() < TOL


def test_pooling_excludes_the_cls_token(ours, reference):
    """The mean of the 1024 patch tokens; with the CLS token (1 of 1025) it would differ by
    ~1e-4, ten times the parity tolerance, so the parity tests see it too."""
    model, transform = reference
    x = transform(photo())[None]
    with torch.no_grad():
        tokens = model.forward_features(x)
    assert tokens.shape[1] == 1 + (448 // 14) ** 2
    unit = lambda t: torch.nn.functional.normalize(t, dim=-1).numpy()  # noqa: E731
    got = ours.encode_images(prepare_images([photo()], SPEC))
    assert np.abs(got - unit(tokens[:, 1:].mean(dim=1))).max() < 1e-6
    assert np.abs(got - unit(tokens.mean(dim=1))).max() > 3 * TOL
    assert np.abs(got - unit(tokens[:, 0])).max() > 1e-2


def test_unit_vectors_batch_equals_one_by_one_and_inputs_matter(ours):
    batch = prepare_images(images(), SPEC)
    together = ours.encode_images(batch)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    apart = np.concatenate([ours.encode_images(batch[i : i + 1]) for i in range(len(batch))])
    assert np.abs(together - apart).max() < TOL
    for a in range(len(together)):
        for b in range(a + 1, len(together)):
            assert np.abs(together[a] - together[b]).max() > 1e-3


@pytest.mark.parametrize("index", range(4))
def test_each_level_equals_its_view_alone_through_timm(ours, reference, index):
    """All views in one batch -> levels; each level equals timm on that view alone, where the
    view is InternVL's transform (Resize((448, 448)), bicubic) of the crop."""
    model, _ = reference
    img = images()[index]
    settings = LevelSettings()
    views, boxes = prepare_views(img, SPEC, settings)
    levels = combine_levels(ours.encode_images(views), settings)
    per_view = [levels["global"], levels["focused"], *levels["tiles"]]
    normalize = T.Compose([T.ToTensor(), T.Normalize(SPEC.mean, SPEC.std)])
    for box, got in zip(boxes, per_view):
        view = T.Resize((448, 448), interpolation=T.InterpolationMode.BICUBIC)(img.crop(box))
        expected = timm_vectors(model, normalize(view)[None])[0]
        assert np.abs(got - expected).max() < TOL
        assert np.abs(got - ours.encode_images(np.array(view)[None])[0]).max() < TOL


def test_levels_differ_from_each_other(ours):
    settings = LevelSettings()
    views, _ = prepare_views(photo(), SPEC, settings)
    vectors = ours.encode_images(views)
    for a in range(len(vectors)):
        for b in range(a + 1, len(vectors)):
            assert np.abs(vectors[a] - vectors[b]).max() > 1e-3


def test_global_level_of_a_square_image_is_the_simple_extractor(ours):
    """For a square image, resizing whole and timm's resize + center crop are the same pixels."""
    img = photo()
    views, _ = prepare_views(img, SPEC, LevelSettings())
    np.testing.assert_array_equal(views[0], prepare_images([img], SPEC)[0])


def test_weights_are_the_seeded_ones(folder, tmp_path):
    from safetensors.torch import load_file

    from models.timm_vit import materialize

    materialize(SPEC, tmp_path)
    stored, again = load_file(str(folder / WEIGHTS_FILE)), load_file(str(tmp_path / WEIGHTS_FILE))
    assert stored.keys() == again.keys()
    assert all(torch.equal(stored[k], again[k]) for k in stored)


def test_bench_architecture_is_internvit_300m():
    import timm

    spec = get_spec("internvit", "bench")
    with torch.device("meta"):
        model = timm.create_model(spec.arch, pretrained=False, **(spec.arch_config or {}))
    assert 303e6 < sum(p.numel() for p in model.parameters()) < 305e6  # 304.0 M
    assert model.embed_dim == spec.output_dim == 1024 and model.patch_embed.img_size == (448, 448)


def test_default_import_offline_fails_fast(monkeypatch, tmp_path):
    from models.hub import WeightsDownloadError
    from models.timm_vit import materialize

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsDownloadError, match="HF_HUB_OFFLINE"):
        materialize(get_spec("internvit", "default"), tmp_path)
    assert not (tmp_path / WEIGHTS_FILE).exists()


def test_default_import_checks_timms_preprocessing(monkeypatch, tmp_path):
    """The pretrained tag's data config must be what the spec reproduces."""
    import dataclasses

    import timm

    import models.timm_vit as timm_vit

    monkeypatch.setattr(timm_vit, "ensure_hub_reachable", lambda what: None)
    real_create = timm.create_model

    def fake_create(name, pretrained=False, **kwargs):  # the tag's config, random tiny weights
        assert name == "vit_intern300m_patch14_448.ogvl_dist" and pretrained
        return real_create(name, pretrained=False, **{**kwargs, **get_spec("internvit", "tiny").arch_config})

    monkeypatch.setattr(timm, "create_model", fake_create)
    timm_vit.materialize(get_spec("internvit", "default"), tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert config["pretrained_cfg"]["hf_hub_id"] == "timm/vit_intern300m_patch14_448.ogvl_dist"
    wrong = dataclasses.replace(get_spec("internvit", "default"), interpolation="bilinear")
    with pytest.raises(ValueError, match="differs from timm's"):
        timm_vit.materialize(wrong, tmp_path / "other")


def test_loader_refuses_mismatched_weights(folder, tmp_path):
    """strict loading: weights of another shape or with missing keys are an error, not noise."""
    import shutil

    from safetensors.torch import load_file, save_file

    from models.timm_vit import load_timm_model

    shutil.copy(folder / CONFIG_FILE, tmp_path / CONFIG_FILE)
    state = load_file(str(folder / WEIGHTS_FILE))
    state.pop(next(iter(state)))
    save_file(state, str(tmp_path / WEIGHTS_FILE))
    with pytest.raises(RuntimeError, match="Missing key"):
        load_timm_model(tmp_path)


def test_prepare_views_converts_modes():
    img = noise_image(300, 200).convert("L")
    views, _ = prepare_views(img, SPEC, LevelSettings())
    assert views.shape == (6, 448, 448, 3) and views.dtype == np.uint8
    rgb, _ = prepare_views(img.convert("RGB"), SPEC, LevelSettings())
    np.testing.assert_array_equal(views, rgb)
    assert isinstance(img, Image.Image)
