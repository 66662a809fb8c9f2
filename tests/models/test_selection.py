"""Which models a server serves: the `models` argument, IMAGE_EMBED_MODELS, the default."""

from __future__ import annotations

import pytest

from config.settings import SettingsError
from models.selection import ServeArguments, check_models, default_selection, known_models, left_out_line, served_models


def test_default_is_every_model(monkeypatch):
    monkeypatch.delenv("IMAGE_EMBED_MODELS", raising=False)
    assert served_models(ServeArguments()) == tuple(known_models())
    assert {"clip", "dinov2", "dinov2_giant", "dinov3", "internvit", "person", "face", "caption"} == set(known_models())


def test_the_argument_is_a_comma_list_in_registry_order():
    assert served_models(ServeArguments(models="face, CLIP")) == ("clip", "face")
    assert served_models(ServeArguments(models=["clip", "clip"])) == ("clip",)


def test_the_argument_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_MODELS", "face")
    assert served_models(ServeArguments()) == ("face",)
    assert served_models(ServeArguments(models="clip")) == ("clip",)


@pytest.mark.parametrize("value", ["clip,nope", "nope"])
def test_an_unknown_name_lists_the_known_ones(value):
    with pytest.raises(SettingsError) as err:
        served_models(ServeArguments(models=value))
    assert "unknown model(s) 'nope' in --arg models" in str(err.value)
    assert "known models: caption, clip" in str(err.value)


def test_an_empty_choice_is_refused():
    with pytest.raises(SettingsError, match="names no model"):
        check_models([])


def test_bad_env_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_MODELS", "bogus")
    with pytest.raises(SettingsError, match="in IMAGE_EMBED_MODELS"):
        served_models(ServeArguments())


def test_gated_models_are_left_out_without_a_token():
    keys, left_out = default_selection("default", have_token=False)
    assert left_out == ["dinov3"] and "dinov3" not in keys
    line = left_out_line(left_out)
    assert "\n" not in line and "HF_TOKEN" in line and "MODELS=" in line
