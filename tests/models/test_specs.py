"""ModelSpec and BatchLimits: identity (fingerprint, store name), validation, metadata form."""

from __future__ import annotations

import dataclasses
import json

import pytest

from models import get_spec
from models.specs import BatchLimits, ModelSpec

LIMITS = {
    "cpu": BatchLimits(max_batch_size=4, max_latency_ms=100, max_batch_wait_ms=5),
    "cuda": BatchLimits(max_batch_size=8, max_latency_ms=10, max_batch_wait_ms=2),
}


def make(**overrides) -> ModelSpec:
    fields = dict(
        key="clip",
        runner="clip",
        profile="tiny",
        family="open_clip",
        display_name="ViT-B/32",
        arch="tiny-clip",
        arch_config={"embed_dim": 8, "vision_cfg": {"layers": 1}},
        seed=0,
        batching={"encode_images": LIMITS},
    )
    fields.update(overrides)
    return ModelSpec(**fields)


def test_fingerprint_is_stable_across_equal_specs():
    assert make().fingerprint == make().fingerprint
    assert len(make().fingerprint) == 12
    assert get_spec("clip", "tiny").fingerprint == get_spec("clip", "tiny").fingerprint


@pytest.mark.parametrize(
    "change",
    [
        {"pretrained": "openai"},
        {"arch_config": {"embed_dim": 16, "vision_cfg": {"layers": 1}}},
        {"arch_config": {"embed_dim": 8, "vision_cfg": {"layers": 2}}},
        {"seed": 1},
        {"arch": "other-arch"},
        {"family": "timm"},
    ],
)
def test_fingerprint_changes_with_weight_defining_fields(change):
    assert make(**change).fingerprint != make().fingerprint


def test_seed_is_irrelevant_for_pretrained_weights():
    a = make(pretrained="openai", seed=0)
    b = make(pretrained="openai", seed=7)
    assert a.fingerprint == b.fingerprint


@pytest.mark.parametrize(
    "change",
    [
        {"batching": {}},
        {"batching": {"encode_images": {"cpu": BatchLimits(max_batch_size=99, max_latency_ms=5, max_batch_wait_ms=1), "cuda": LIMITS["cuda"]}}},
        {"display_name": "renamed"},
        {"output_dim": 1024},
        {"weights_source": "somewhere else"},
        {"runner": "other"},
        {"gated": True},
        {"max_concurrency": {"cpu": 1, "cuda": 2}},
    ],
)
def test_fingerprint_ignores_fields_that_do_not_define_weights(change):
    assert make(**change).fingerprint == make().fingerprint


def test_store_tag_is_name_and_fingerprint():
    spec = make()
    assert spec.store_tag == f"{spec.store_name}:{spec.fingerprint}"


def test_store_name_slugs():
    assert make().store_name == "clip-tiny-random"
    assert make(profile="bench", arch="ViT-B-32-quickgelu").store_name == "clip-vit-b-32-quickgelu-random"
    assert (
        make(profile="default", arch="ViT-B/32 (x)", pretrained="laion2b_s34B_b79K").store_name
        == "clip-vit-b-32-x-laion2b-s34b-b79k"
    )
    for spec in (get_spec("clip", p) for p in ("default", "tiny", "bench")):
        name = spec.store_name
        assert name == name.lower() and name.strip("-") == name
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-"), name


def test_store_names_differ_between_profiles():
    names = {get_spec("clip", p).store_tag for p in ("default", "tiny", "bench")}
    assert len(names) == 3


@pytest.mark.parametrize("size", [1, 0, -3])
def test_batch_limits_reject_small_batches(size):
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchLimits(max_batch_size=size, max_latency_ms=10, max_batch_wait_ms=0)


def test_batch_limits_accept_two_and_reject_nonpositive_latency():
    assert BatchLimits(max_batch_size=2, max_latency_ms=1, max_batch_wait_ms=0).max_batch_size == 2
    with pytest.raises(ValueError, match="max_latency_ms"):
        BatchLimits(max_batch_size=2, max_latency_ms=0, max_batch_wait_ms=0)


@pytest.mark.parametrize("wait", [-1, 100, 250])
def test_the_batching_wait_bound_is_not_negative_and_below_the_shedding_deadline(wait):
    assert BatchLimits(max_batch_size=2, max_latency_ms=100, max_batch_wait_ms=0.5).max_batch_wait_ms == 0.5
    with pytest.raises(ValueError, match="max_batch_wait_ms"):
        BatchLimits(max_batch_size=2, max_latency_ms=100, max_batch_wait_ms=wait)


def test_batch_limits_are_frozen_and_keyword_only():
    limits = BatchLimits(max_batch_size=2, max_latency_ms=1, max_batch_wait_ms=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_batch_size = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        BatchLimits(2, 1, 0)  # type: ignore[misc]


def test_unknown_profile_raises():
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        make(profile="huge")


@pytest.mark.parametrize("change", [{"interpolation": "nearest"}, {"resize_mode": "pad"}])
def test_unsupported_preprocessing_raises(change):
    with pytest.raises(ValueError, match="unsupported"):
        make(**change)


def test_batching_must_cover_every_device_kind():
    with pytest.raises(ValueError, match=r"missing for \['cuda'\]"):
        make(batching={"encode_images": {"cpu": LIMITS["cpu"]}})


def test_batch_limits_lookup():
    spec = make()
    assert spec.batch_limits("encode_images", "cuda") == LIMITS["cuda"]
    with pytest.raises(KeyError, match="encode_texts"):
        spec.batch_limits("encode_texts", "cpu")


def _contains_none(value) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_contains_none(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_none(v) for v in value)
    return False


@pytest.mark.parametrize("profile", ["default", "tiny", "bench"])
def test_to_metadata_has_no_none_and_is_json(profile):
    spec = get_spec("clip", profile)
    meta = spec.to_metadata()
    assert not _contains_none(meta)
    assert json.loads(json.dumps(meta)) == meta
    assert meta["key"] == "clip" and meta["profile"] == profile
    assert meta["store_tag"] == spec.store_tag
    assert meta["batching"]["encode_images"]["cpu"]["max_batch_size"] == spec.batch_limits("encode_images", "cpu").max_batch_size


def test_to_metadata_drops_unset_fields_and_keeps_set_ones():
    meta = make(context_length=None).to_metadata()
    assert "pretrained" not in meta and "context_length" not in meta
    assert meta["arch_config"] == {"embed_dim": 8, "vision_cfg": {"layers": 1}}
    assert meta["mean"] == [0.5, 0.5, 0.5]
    assert "pretrained" in make(pretrained="openai").to_metadata()


def test_crop_rounding_and_resize_size_are_validated():
    assert make(crop_rounding="floor", resize_size=256).resize_size == 256
    with pytest.raises(ValueError, match="unsupported crop_rounding 'ceil'"):
        make(crop_rounding="ceil")
    with pytest.raises(ValueError, match="resize_size 200 is smaller than input_size 224"):
        make(resize_size=200)


def test_preprocessing_does_not_change_the_fingerprint():
    assert make(resize_size=256, crop_rounding="floor").fingerprint == make().fingerprint


def test_max_concurrency_defaults_and_validation():
    from models.specs import DEFAULT_MAX_CONCURRENCY

    assert make().max_concurrency == DEFAULT_MAX_CONCURRENCY and make().max_concurrency is not DEFAULT_MAX_CONCURRENCY
    for bad in ({"cpu": 4}, {"cpu": 0, "cuda": 4}):
        with pytest.raises(ValueError, match="max_concurrency"):
            make(max_concurrency=bad)


# runner, then max_concurrency (cpu, cuda): the values configuration*.yaml used to be the only home of
CATALOG_RUNNERS = {
    "clip": ("clip", (64, 256)),
    "dinov2": ("dino", (32, 128)),
    "dinov2_giant": ("dino", (32, 128)),
    "dinov3": ("dino", (32, 128)),
    "internvit": ("internvit", (16, 64)),
    "person": ("person", (64, 64)),
    "face": ("face", (64, 64)),
    "caption": ("caption", (64, 64)),
}


@pytest.mark.parametrize("profile", ["default", "tiny", "bench"])
def test_catalog_runners_and_traffic_limits(profile):
    from models import list_models

    got = {s.key: (s.runner, (s.max_concurrency["cpu"], s.max_concurrency["cuda"])) for s in list_models(profile)}
    assert got == CATALOG_RUNNERS


def test_only_dinov3_default_is_gated():
    from models import list_models

    gated = [(s.key, s.profile) for p in ("default", "tiny", "bench") for s in list_models(p) if s.gated]
    assert gated == [("dinov3", "default")]


@pytest.mark.parametrize("profile", ["default", "bench", "tiny"])
def test_every_model_has_store_tags_bentoml_takes(profile):
    """Both entries' names fit BentoML's 63 characters (the default DINOv3's ONNX entry did not)."""
    from bentoml import Tag

    from models import list_models

    for spec in list_models(profile):
        names = [Tag.from_taglike(tag).name for tag in (spec.store_tag, spec.onnx_store_tag)]
        assert len(set(names)) == 2 and all(len(name) <= 63 for name in names), names


def test_a_long_store_name_keeps_its_start_and_stays_apart():
    long = dataclasses.replace(get_spec("clip", "default"), key="k" * 70)
    other = dataclasses.replace(long, key="k" * 69 + "j")
    assert long.store_name.startswith("k" * 40) and len(long.store_name) == 63
    assert long.store_name != other.store_name and long.onnx_store_tag != other.onnx_store_tag
    assert get_spec("clip", "default").store_name == "clip-vit-b-32-quickgelu-openai"  # short names as before
