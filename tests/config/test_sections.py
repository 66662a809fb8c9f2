"""The sections of the settings: every variable belongs to exactly one, the settings object is
each of them (no copies), and a section built alone validates as the environment does."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config import sections
from config.sections import IntakeSettings, LevelSettings, ModelSettings, Section, ThumbnailSettings
from config.settings import Settings, load_settings

SECTIONS = [cls for cls in vars(sections).values() if isinstance(cls, type) and issubclass(cls, Section) and cls is not Section]


def test_every_variable_is_declared_in_exactly_one_section():
    owners: dict[str, list[str]] = {}
    for section in SECTIONS:
        for name in section.model_fields:
            owners.setdefault(name, []).append(section.__name__)
    assert sorted(owners) == sorted(Settings.model_fields)
    assert {name: found for name, found in owners.items() if len(found) != 1} == {}


def test_the_settings_are_each_section_with_the_same_values(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_MAX_IMAGE_BYTES", "1234")
    monkeypatch.setenv("IMAGE_EMBED_INTERNVIT_TILES", "3x1")
    settings = load_settings()
    for section in SECTIONS:
        assert isinstance(settings, section)
    assert settings.max_image_bytes == 1234 and settings.n_views == 5


def test_a_section_built_alone_parses_and_checks_like_the_environment():
    assert ModelSettings(require_gpu="yes", models="CLIP, dinov2").models == ("clip", "dinov2")
    assert ThumbnailSettings(thumbnails="0").thumbnails is False
    assert IntakeSettings(url_allowlist="10.0.0.0/8, images.internal:8080").allow_rules[1].port == 8080
    with pytest.raises(ValidationError, match="not a host, IP or network"):
        IntakeSettings(url_allowlist=("a/b",))
    with pytest.raises(ValidationError, match="outside 1..4"):
        LevelSettings(internvit_tiles=(5, 1))
    with pytest.raises(ValidationError, match="extra"):
        IntakeSettings(max_pixels=10)  # the old view's name: refused, not ignored


def test_allow_rules_are_parsed_once_per_settings_object(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_URL_ALLOWLIST", "10.0.0.0/8")
    settings = load_settings()
    assert settings.allow_rules is settings.allow_rules and settings.allow_rules[0].network is not None
