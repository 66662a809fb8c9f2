"""The intake's section of the settings: allow-list entries, and the limits from the environment."""

from __future__ import annotations

import ipaddress

import pytest

from config.allowlist import AllowRule
from config.settings import SettingsError, load_settings

V4 = ipaddress.ip_address("10.1.2.3")
LOOP = ipaddress.ip_address("127.0.0.1")
V6 = ipaddress.ip_address("::1")


@pytest.mark.parametrize(
    ("entry", "host", "ip", "port", "admitted"),
    [
        ("10.0.0.0/8", "x", V4, 80, True),
        ("10.0.0.0/8", "x", LOOP, 80, False),
        ("127.0.0.1:8080", "127.0.0.1", LOOP, 8080, True),
        ("127.0.0.1:8080", "127.0.0.1", LOOP, 8081, False),
        ("[::1]:8080", "::1", V6, 8080, True),
        ("::1", "::1", V6, 443, True),
        ("::1", "127.0.0.1", LOOP, 443, False),
        ("fd00::/8", "h", ipaddress.ip_address("fd00::5"), 80, True),
        ("Images.Internal", "images.internal", V4, 80, True),
        ("images.internal", "images.internal.", V4, 80, True),
        ("images.internal", "evil.internal", V4, 80, False),
        ("images.internal:8443", "images.internal", V4, 443, False),
    ],
)
def test_allow_rules(entry, host, ip, port, admitted):
    assert AllowRule.parse(entry).admits(host, ip, port) is admitted


@pytest.mark.parametrize("entry", ["a/b", "host:99999", "host:abc", "10.0.0.1:0", "", "[::1]:x"])
def test_invalid_allow_entries_are_refused(entry):
    with pytest.raises(SettingsError):
        AllowRule.parse(entry)


def test_defaults_admit_nothing(monkeypatch):
    monkeypatch.delenv("IMAGE_EMBED_URL_ALLOWLIST", raising=False)
    assert load_settings().allow_rules == ()


def test_from_env(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_URL_ALLOWLIST", "10.0.0.0/8, images.internal:8080 ,")
    monkeypatch.setenv("IMAGE_EMBED_MAX_IMAGE_BYTES", "1000")
    monkeypatch.setenv("IMAGE_EMBED_MAX_IMAGE_PIXELS", "4000000")
    monkeypatch.setenv("IMAGE_EMBED_MIN_IMAGE_SIDE", "8")
    monkeypatch.setenv("IMAGE_EMBED_FETCH_TIMEOUT", "2.5")
    monkeypatch.setenv("IMAGE_EMBED_JPEG_DRAFT", "1")
    settings = load_settings()
    assert len(settings.allow_rules) == 2 and settings.jpeg_draft
    assert (settings.max_image_bytes, settings.max_image_pixels, settings.min_image_side) == (1000, 4_000_000, 8)
    assert settings.fetch_timeout == 2.5


@pytest.mark.parametrize(
    ("name", "value"),
    [("IMAGE_EMBED_MAX_IMAGE_BYTES", "lots"), ("IMAGE_EMBED_MIN_IMAGE_SIDE", "0"), ("IMAGE_EMBED_FETCH_TIMEOUT", "-1")],
)
def test_bad_values_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_url_policy_from_env(monkeypatch):
    monkeypatch.delenv("IMAGE_EMBED_URL_POLICY", raising=False)
    assert load_settings().url_policy == "public"
    monkeypatch.setenv("IMAGE_EMBED_URL_POLICY", " AllowList ")
    assert load_settings().url_policy == "allowlist"
    monkeypatch.setenv("IMAGE_EMBED_URL_POLICY", "none")
    with pytest.raises(SettingsError, match="IMAGE_EMBED_URL_POLICY='none' is not one of public, allowlist, off"):
        load_settings()
