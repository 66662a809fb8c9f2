"""DINO specs: variants chosen by IMAGE_EMBED_DINOV2_VARIANT, bench architectures equal the hub
checkpoints' sizes, and the default profile's import checks what it downloads."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from config.settings import SettingsError
from models import get_spec
from models.catalog import dinov2 as dinov2_catalog
from models.hub import WeightsDownloadError
from tests.conftest import ROOT


def test_default_variant_is_base():
    spec = get_spec("dinov2", "default")
    assert spec.pretrained == "facebook/dinov2-base" and spec.output_dim == 768
    assert get_spec("dinov3", "default").pretrained == "facebook/dinov3-vitl16-pretrain-lvd1689m"


@pytest.mark.parametrize(("variant", "dim"), [("small", 384), ("base", 768), ("large", 1024), ("giant", 1536)])
def test_variants(variant, dim):
    default, bench, tiny = dinov2_catalog._specs(variant)
    assert default.pretrained == f"facebook/dinov2-{variant}" and default.output_dim == dim
    assert bench.arch == default.arch and bench.random_weights and bench.output_dim == dim
    assert bench.arch_config["hidden_size"] == dim
    assert tiny.arch_config == dinov2_catalog.TINY_CONFIG
    for spec in (default, bench, tiny):  # one preprocessing for every variant
        assert (spec.input_size, spec.resize_size, spec.crop_rounding) == (224, 256, "floor")


def test_dinov2_giant_is_vit_g14_in_every_profile():
    default, bench, tiny = (get_spec("dinov2_giant", p) for p in ("default", "bench", "tiny"))
    assert default.pretrained == "facebook/dinov2-giant" and default.output_dim == 1536 and not default.gated
    assert default.display_name == "DINOv2 ViT-g/14" and default.family == get_spec("dinov2", "default").family
    giant_config = {**dinov2_catalog._COMMON_CONFIG, **dinov2_catalog.VARIANTS["giant"][1]}
    assert bench.random_weights and bench.arch_config == giant_config
    assert bench.output_dim == 1536
    # its own tiny twin: 48-d (dinov2's is 32-d), its own seed, ViT-g's SwiGLU MLP
    assert tiny.output_dim == tiny.arch_config["hidden_size"] == 48 != get_spec("dinov2", "tiny").output_dim
    assert tiny.arch_config["use_swiglu_ffn"] and tiny.seed != get_spec("dinov2", "tiny").seed
    for spec in (default, bench, tiny):
        assert spec.runner == "dino" and spec.batch_limits("encode_images", "cpu").max_batch_size <= 4
        assert spec.store_tag != get_spec("dinov2", spec.profile).store_tag


def test_variant_env_does_not_change_dinov2_giant():
    code = "from models import get_spec; s = get_spec('dinov2_giant', 'default'); print(s.pretrained, s.output_dim)"
    env = {"IMAGE_EMBED_DINOV2_VARIANT": "small", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["facebook/dinov2-giant", "1536"]


def test_variant_env(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_DINOV2_VARIANT", " Large ")
    assert dinov2_catalog.dinov2_variant() == "large"
    monkeypatch.setenv("IMAGE_EMBED_DINOV2_VARIANT", "huge")
    with pytest.raises(SettingsError, match="IMAGE_EMBED_DINOV2_VARIANT='huge'.*giant"):
        dinov2_catalog.dinov2_variant()
    monkeypatch.delenv("IMAGE_EMBED_DINOV2_VARIANT")
    assert dinov2_catalog.dinov2_variant() == "base"


def test_variant_env_is_read_when_the_catalog_registers():
    code = "from models import get_spec; s = get_spec('dinov2', 'default'); print(s.pretrained, s.output_dim)"
    env = {"IMAGE_EMBED_DINOV2_VARIANT": "giant", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["facebook/dinov2-giant", "1536"]


# Parameter counts of the hub checkpoints (model.safetensors sizes / 4 bytes).
@pytest.mark.parametrize(
    ("key", "low", "high"),
    [("dinov2", 86.0e6, 87.0e6), ("dinov3", 302.0e6, 305.0e6), ("dinov2_giant", 1.13e9, 1.14e9)],
    ids=["dinov2-base-86.6M", "dinov3-vitl16-303M", "dinov2-giant-1.14B"],
)
def test_bench_architecture_has_the_checkpoints_size(key, low, high):
    from transformers import AutoConfig, AutoModel

    spec = get_spec(key, "bench")
    with torch.device("meta"):  # no memory, no time: only shapes
        model = AutoModel.from_config(AutoConfig.for_model(**spec.arch_config))
    assert type(model).__name__ == ("DINOv3ViTModel" if key == "dinov3" else "Dinov2Model")
    assert low < sum(p.numel() for p in model.parameters()) < high


class _FakeHub:
    """transformers' from_pretrained stand-ins: a tiny model and a chosen processor."""

    def __init__(self, spec, processor=None, error: Exception | None = None):
        self.spec, self.processor, self.error = spec, processor, error

    def model(self, name, **kwargs):
        from transformers import AutoConfig, AutoModel

        if self.error:
            raise self.error
        return AutoModel.from_config(AutoConfig.for_model(**get_spec(self.spec.key, "tiny").arch_config))

    def image_processor(self, name, **kwargs):
        return self.processor


@pytest.fixture()
def fake_hub(monkeypatch):
    import transformers

    import models.dino as dino

    def install(spec, processor=None, error=None):
        hub = _FakeHub(spec, processor, error)
        monkeypatch.setattr(dino, "ensure_hub_reachable", lambda what: None)
        monkeypatch.setattr(transformers.AutoModel, "from_pretrained", hub.model)
        monkeypatch.setattr(transformers.AutoImageProcessor, "from_pretrained", hub.image_processor)

    return install


@pytest.mark.parametrize("key", ["dinov2", "dinov2_giant", "dinov3"])
def test_default_import_keeps_a_matching_processor(fake_hub, tmp_path, key):
    from models.dino import PROCESSOR_FILE, WEIGHTS_FILE, make_processor, materialize

    spec = get_spec(key, "default")
    fake_hub(spec, processor=make_processor(spec))
    materialize(spec, tmp_path)
    assert (tmp_path / WEIGHTS_FILE).is_file() and (tmp_path / PROCESSOR_FILE).is_file()


def test_default_import_refuses_a_processor_that_differs(fake_hub, tmp_path):
    from transformers import BitImageProcessor

    from models.dino import materialize

    spec = get_spec("dinov2", "default")
    fake_hub(spec, processor=BitImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}))
    with pytest.raises(ValueError, match="differs from facebook/dinov2-base"):
        materialize(spec, tmp_path)


def test_default_import_reports_hub_errors(fake_hub, tmp_path):
    from models.dino import materialize

    spec = get_spec("dinov3", "default")
    fake_hub(spec, error=OSError("You are trying to access a gated repo."))
    with pytest.raises(WeightsDownloadError, match="gated repo"):
        materialize(spec, tmp_path)


def test_default_import_offline_fails_fast(monkeypatch, tmp_path):
    from models.dino import materialize

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsDownloadError, match="HF_HUB_OFFLINE"):
        materialize(get_spec("dinov2", "default"), tmp_path)
