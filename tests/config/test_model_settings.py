"""IMAGE_EMBED_PROFILE / _DEVICE / _REQUIRE_GPU parsing (the models' section of the settings)."""

from __future__ import annotations

import pytest

from config.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("tiny", "tiny"), ("TINY", "tiny"), (" Bench ", "bench"), ("default", "default"), ("", "default"), ("   ", "default")],
)
def test_profile_parsing(monkeypatch, raw, expected):
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", raw)
    assert load_settings().profile == expected


def test_profile_unset_is_default(monkeypatch):
    monkeypatch.delenv("IMAGE_EMBED_PROFILE")
    assert load_settings().profile == "default"
    assert load_settings().profile == "default"


def test_invalid_profile_lists_the_choices(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "huge")
    with pytest.raises(SettingsError) as info:
        load_settings().profile
    message = str(info.value)
    assert "IMAGE_EMBED_PROFILE='huge'" in message
    for choice in ("default", "tiny", "bench"):
        assert f"{choice}:" in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("raw", "expected"), [("auto", "auto"), ("CPU", "cpu"), (" cuda ", "cuda"), ("", "auto")])
def test_device_parsing(monkeypatch, raw, expected):
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", raw)
    assert load_settings().device == expected


def test_device_unset_is_auto(monkeypatch):
    monkeypatch.delenv("IMAGE_EMBED_DEVICE")
    assert load_settings().device == "auto"


@pytest.mark.parametrize("raw", ["gpu", "cuda:0", "mps", "tpu"])
def test_invalid_device(monkeypatch, raw):
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", raw)
    with pytest.raises(SettingsError, match="IMAGE_EMBED_DEVICE") as info:
        load_settings()
    assert "auto" in str(info.value) and "cuda" in str(info.value)


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", " On "])
def test_require_gpu_true(monkeypatch, raw):
    monkeypatch.setenv("IMAGE_EMBED_REQUIRE_GPU", raw)
    assert load_settings().require_gpu is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off", ""])
def test_require_gpu_false(monkeypatch, raw):
    monkeypatch.setenv("IMAGE_EMBED_REQUIRE_GPU", raw)
    assert load_settings().require_gpu is False


def test_require_gpu_unset_is_false(monkeypatch):
    monkeypatch.delenv("IMAGE_EMBED_REQUIRE_GPU", raising=False)
    assert load_settings().require_gpu is False


@pytest.mark.parametrize("raw", ["2", "maybe", "y", "enabled"])
def test_require_gpu_invalid(monkeypatch, raw):
    monkeypatch.setenv("IMAGE_EMBED_REQUIRE_GPU", raw)
    with pytest.raises(SettingsError, match="IMAGE_EMBED_REQUIRE_GPU"):
        load_settings()


def test_settings_are_read_on_every_call(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "bench")
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", "cuda")
    monkeypatch.setenv("IMAGE_EMBED_REQUIRE_GPU", "1")
    first = load_settings()
    assert (first.profile, first.device, first.require_gpu) == ("bench", "cuda", True)
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "tiny")
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", "cpu")
    monkeypatch.setenv("IMAGE_EMBED_REQUIRE_GPU", "0")
    second = load_settings()
    assert (second.profile, second.device, second.require_gpu) == ("tiny", "cpu", False)
