"""CLIP models by name (IMAGE_EMBED_EXTRA_CLIP): entries, their specs in every profile, their tiny
twins of the same kind, and parity of both engines with open_clip's own pipeline on the same
weights, for a ViT-L/14 and an RN50x16 twin."""

from __future__ import annotations

import json

import numpy as np
import pytest

from config.settings import SettingsError
from models import get_spec
from models.catalog.extra_clip import spec_of
from models.clip import CONFIG_FILE, ClipModel, stored_logit_scale
from models.device import CPU
from models.families import embeds_texts
from models.onnx_engine import OnnxModel
from models.open_clip_names import describe, parse_entries, stored_fields
from models.preprocess import prepare_images
from config.settings import SettingsError
from models.store import import_spec, model_dir, onnx_dir
from tests.clip_reference import OpenClipReference
from tests.conftest import noise_image, photo

ENTRIES = {e.key: e for e in parse_entries(["ViT-L-14/openai", "RN50x16/openai"])}
TEXTS = ["a photo of an astronaut", "a cat", "x " * 200]
TOL = 1e-5


def test_entries_name_their_models():
    entries = parse_entries(["ViT-L-14/openai", "rn=RN50x16/openai", "ViT-B-16-SigLIP/webli"])
    assert [(e.key, e.arch, e.pretrained) for e in entries] == [
        ("clip_vit_l_14_openai", "ViT-L-14", "openai"),
        ("rn", "RN50x16", "openai"),
        ("clip_vit_b_16_siglip_webli", "ViT-B-16-SigLIP", "webli"),
    ]
    assert entries[0].name == "ViT-L-14/openai" and entries[0].seed != entries[1].seed
    with pytest.raises(SettingsError, match="twice"):
        parse_entries(["a=ViT-L-14/openai", "a=RN50/openai"])


@pytest.mark.parametrize(
    ("key", "size", "dim"), [("clip_vit_l_14_openai", 224, 768), ("clip_rn50x16_openai", 384, 768)]
)
def test_every_profile_describes_the_real_model(key, size, dim):
    specs = {p: spec_of(ENTRIES[key], p) for p in ("default", "bench", "tiny")}
    for spec in specs.values():
        assert (spec.key, spec.runner, spec.family) == (key, key, "open_clip") and embeds_texts(spec)
        assert (spec.input_size, spec.output_dim, spec.context_length) == (size, dim, 77)
        assert (spec.mean, spec.interpolation, spec.resize_mode) == (get_spec("clip").mean, "bicubic", "shortest")
    assert specs["default"].pretrained == "openai" and specs["bench"].random_weights and specs["tiny"].random_weights
    assert len({s.store_tag for s in specs.values()}) == 3


def test_tiny_twins_are_of_the_real_kind():
    vit = spec_of(ENTRIES["clip_vit_l_14_openai"], "tiny").arch_config
    rn = spec_of(ENTRIES["clip_rn50x16_openai"], "tiny").arch_config
    assert vit["vision_cfg"]["patch_size"] == 14 and vit["vision_cfg"]["layers"] == 2  # a ViT of ViT-L's patches
    assert rn["vision_cfg"]["layers"] == [1, 1, 1, 1] and rn["vision_cfg"]["image_size"] == 384  # a ModifiedResNet
    assert vit["quick_gelu"] and rn["quick_gelu"]  # as OpenAI's weights were trained
    assert vit["embed_dim"] == rn["embed_dim"] == 768


@pytest.mark.parametrize(("value", "says"), [("NoSuchArch/openai", "no architecture"), ("ViT-L-14/nope", "no pretrained tag")])
def test_unknown_architectures_and_tags_are_refused(value, says):
    with pytest.raises(SettingsError, match=says):
        spec_of(parse_entries([value])[0], "tiny")


@pytest.fixture(scope="module", params=sorted(ENTRIES))
def twin(request, tiny_models):
    spec = spec_of(ENTRIES[request.param], "tiny")
    import_spec(spec)
    return spec


def test_an_imported_model_is_described_by_the_store(twin):
    """A server reads the spec back from the store: no open_clip needed, the same spec."""
    entry = ENTRIES[twin.key]
    fields = stored_fields(entry, "tiny")
    assert fields is not None and describe(entry, "tiny") == fields
    assert spec_of(entry, "tiny") == twin
    assert json.loads((model_dir(twin) / CONFIG_FILE).read_text())["model_cfg"] == twin.arch_config
    assert stored_fields(entry, "bench") is None  # not imported: open_clip describes it


def images():
    return [photo(), noise_image(640, 360, seed=1), noise_image(200, 500, seed=2)]


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_both_engines_equal_open_clip(twin, engine):
    folder = model_dir(twin)
    ours = ClipModel(twin, folder, CPU) if engine == "torch" else OnnxModel(twin, onnx_dir(twin), CPU, "fp32")
    reference = OpenClipReference(folder)
    got = ours.encode_images(prepare_images(images(), twin))
    assert got.shape == (3, twin.output_dim)
    assert np.abs(got - reference.images(images())).max() < TOL
    assert np.abs(ours.encode_texts(TEXTS) - reference.texts(TEXTS)).max() < TOL
    assert np.abs(got[0] - got[1]).max() > 1e-3  # the random weights still tell images apart


def test_logit_scale_is_the_stored_weights_in_both_entries(twin):
    expected = float(OpenClipReference(model_dir(twin)).model.logit_scale.detach().exp())
    assert abs(stored_logit_scale(model_dir(twin)) - expected) < 1e-6
    assert abs(stored_logit_scale(onnx_dir(twin)) - expected) < 1e-6  # the lean image's: no weights there
    assert not list(onnx_dir(twin).glob("*.safetensors"))
