"""The registry: profiles mirror each other, lookups fail clearly, the environment picks the profile."""

from __future__ import annotations

import dataclasses

import pytest

from config.settings import SettingsError
from models import registry
from models.registry import UnknownModelError, get_spec, list_models, register
from models.specs import PROFILES

PREPROCESSING = ("input_size", "mean", "std", "interpolation", "resize_mode", "resize_size", "crop_rounding")


def test_profiles_are_the_three_documented_ones():
    assert PROFILES == ("default", "tiny", "bench")


def test_every_profile_has_the_same_model_keys():
    keys = {p: [s.key for s in list_models(p)] for p in PROFILES}
    assert keys["default"], "the default profile registers no model"
    assert keys["tiny"] == keys["default"]
    assert keys["bench"] == keys["default"]


def test_list_models_is_sorted_and_scoped_to_the_profile():
    for profile in PROFILES:
        specs = list_models(profile)
        assert [s.key for s in specs] == sorted(s.key for s in specs)
        assert {s.profile for s in specs} == {profile}


@pytest.mark.parametrize("profile", ["tiny", "bench"])
def test_twins_share_output_dim_and_preprocessing(profile):
    """The tiny and bench twins must exercise the same code paths as the real models.

    Bench twins are the real architectures, so their output size is the real one too. A tiny
    twin's output is its tiny width where the embedding is the backbone's own width (DINO,
    InternViT); each family's tests check that output_dim is what the model returns."""
    for real in list_models("default"):
        twin = get_spec(real.key, profile)
        if profile == "bench" or real.key == "clip":
            assert twin.output_dim == real.output_dim, real.key
        assert twin.family == real.family, real.key
        assert twin.context_length == real.context_length, real.key
        for field in PREPROCESSING:
            assert getattr(twin, field) == getattr(real, field), f"{real.key}.{field}"


def test_only_default_profile_downloads_weights():
    for spec in list_models("default"):
        assert not spec.random_weights and spec.weights_source
    for profile in ("tiny", "bench"):
        # random weights, or real ones that ship inside an installed package (no download)
        assert all(s.random_weights or s.weights_bundled for s in list_models(profile))


def test_bundled_weights_are_the_same_in_every_profile():
    bundled = [s for s in list_models("default") if s.weights_bundled]
    assert bundled, "expected MTCNN's package weights"
    for spec in bundled:
        for profile in ("tiny", "bench"):
            twin = get_spec(spec.key, profile)
            assert twin.weights_bundled and twin.fingerprint == spec.fingerprint


def test_clip_tiny_twin_output_dim_matches_its_config():
    spec = get_spec("clip", "tiny")
    assert spec.arch_config["embed_dim"] == spec.output_dim == 512
    assert spec.arch_config["vision_cfg"]["image_size"] == spec.input_size


def test_get_spec_unknown_key_names_the_known_keys():
    with pytest.raises(UnknownModelError) as info:
        get_spec("nonexistent", "tiny")
    message = str(info.value)
    assert "'nonexistent'" in message and "'tiny'" in message
    for spec in list_models("tiny"):
        assert repr(spec.key) in message
    assert isinstance(info.value, KeyError)


def test_get_spec_returns_the_requested_profile():
    assert get_spec("clip", "bench").profile == "bench"
    assert get_spec("clip", "default").pretrained == "openai"


def test_duplicate_register_raises():
    with pytest.raises(ValueError, match="already registered"):
        register(get_spec("clip", "tiny"))


def test_register_adds_a_new_spec(monkeypatch):
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    extra = dataclasses.replace(get_spec("clip", "tiny"), key="zzz-extra")
    assert register(extra) is extra
    assert get_spec("zzz-extra", "tiny") is extra
    assert [s.key for s in list_models("tiny")][-1] == "zzz-extra"
    with pytest.raises(UnknownModelError):
        get_spec("zzz-extra", "default")


def test_list_models_uses_the_environment(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "bench")
    assert {s.profile for s in list_models()} == {"bench"}
    assert get_spec("clip").profile == "bench"
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "Default")
    assert {s.profile for s in list_models()} == {"default"}
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "tiny")
    assert get_spec("clip").profile == "tiny"


def test_list_models_rejects_unknown_profiles(monkeypatch):
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        list_models("huge")
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "huge")
    with pytest.raises(SettingsError):
        list_models()


def test_a_provider_is_asked_once_per_profile_when_that_profile_is_looked_up(monkeypatch):
    monkeypatch.setattr(registry, "_SPECS", dict(registry._SPECS))
    monkeypatch.setattr(registry, "_PROVIDERS", list(registry._PROVIDERS))
    monkeypatch.setattr(registry, "_PROVIDED", set(registry._PROVIDED))
    asked = []

    def provider(profile):
        asked.append(profile)
        return [dataclasses.replace(get_spec("clip", profile), key="zzz-provided")]

    registry.register_provider(provider)
    assert asked == []  # nothing is described before a lookup
    assert get_spec("zzz-provided", "tiny").profile == "tiny"
    assert "zzz-provided" in [s.key for s in list_models("tiny")]
    assert asked == ["tiny"]  # once, for the profile in use only
    assert registry.find_by_store_tag(get_spec("zzz-provided", "bench").store_tag, "bench").key == "zzz-provided"
    assert asked == ["tiny", "bench"]
