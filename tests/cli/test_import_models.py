"""image-embed import-models: offline tiny imports, idempotence, clear failures and exit codes."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

from models import get_spec, list_models, registry
from models.store import find, is_imported, remove
from tests.models.old_store import make_old_entry, no_network


@pytest.fixture(scope="module")
def script():
    module = importlib.import_module("cli.import_models")
    return module


def test_tiny_import_then_skip(script, capsys):
    assert script.main(["--profile", "tiny"]) == 0
    first = capsys.readouterr()
    assert "profile 'tiny'" in first.err and first.out == ""  # stdout stays for --print-served
    assert find(get_spec("clip", "tiny")) is not None

    assert script.main(["--profile", "tiny"]) == 0
    second = capsys.readouterr()
    assert f"{get_spec('clip', 'tiny').store_tag}: already in the model store, skipped" in second.err
    assert "imported in" not in second.err
    assert f"done: {len(list_models('tiny'))} model(s) of profile 'tiny'" in second.err


def test_a_new_spec_is_imported_once(script, capsys, monkeypatch):
    variant = dataclasses.replace(get_spec("clip", "tiny"), seed=4242)
    specs = dict(registry._SPECS)
    specs[("clip", "tiny")] = variant
    monkeypatch.setattr(registry, "_SPECS", specs)
    assert find(variant) is None

    assert script.main(["--profile", "tiny", "--only", "clip"]) == 0
    out = capsys.readouterr().err
    assert f"{variant.store_tag}: imported in" in out
    assert find(variant) is not None

    assert script.main(["--profile", "tiny"]) == 0
    assert f"{variant.store_tag}: already in the model store, skipped" in capsys.readouterr().err


def test_an_older_store_is_completed_offline_with_one_line(script, capsys, monkeypatch):
    """An entry from before the ONNX engine and the stored tokenizer (`make serve` runs the
    script every time): completed from the weights in the store, with no network."""
    variant = dataclasses.replace(get_spec("clip", "tiny"), seed=4343)
    monkeypatch.setattr(registry, "_SPECS", {**registry._SPECS, ("clip", "tiny"): variant})
    make_old_entry(variant, graphs=False)
    try:
        with no_network():
            assert script.main(["--profile", "tiny", "--models", "clip"]) == 0
        lines = [line.strip() for line in capsys.readouterr().err.splitlines() if variant.store_tag + ":" in line]
        assert len(lines) == 1 and lines[0].startswith(
            f"{variant.store_tag}: completed offline from its weights in the store: added text_tokenizer.json.gz, "
            f"logit_scale.json, the ONNX entry {variant.onnx_store_tag} (graphs exported from the weights) ("
        ), lines
        assert is_imported(variant)
    finally:
        remove(variant)


def test_default_profile_offline_fails_with_a_way_out(script, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert script.main(["--profile", "default"]) == 1
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err
    assert "image-embed import-models --profile tiny" in err
    assert "--profile bench" in err
    assert find(get_spec("clip", "default")) is None  # nothing half-written left behind


def test_unknown_model_key(script, capsys):
    assert script.main(["--profile", "tiny", "--only", "nonexistent"]) == 2
    err = capsys.readouterr().err
    assert "unknown model(s) 'nonexistent' in --models; known models: caption, clip" in err


def test_models_imports_exactly_those_and_prints_them(script, capsys):
    assert script.main(["--profile", "tiny", "--models", "face, clip", "--print-served"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "clip,face\n"  # registry order, what `make serve` passes to --arg models=
    assert "done: 2 model(s)" in captured.err


def test_models_default_to_the_environment(script, capsys, monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_MODELS", "clip")
    assert script.main(["--profile", "tiny", "--print-served"]) == 0
    assert capsys.readouterr().out == "clip\n"


def test_gated_models_are_left_out_without_a_token_in_one_line(script, capsys, monkeypatch):
    monkeypatch.setattr(script, "hub_token_set", lambda: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert script.main(["--profile", "default", "--print-served"]) == 1  # offline: the first download fails
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if "not serving" in ln]
    assert "dinov3" in line and "HF_TOKEN" in line and "MODELS=" in line


def test_unknown_profile_is_a_usage_error(script, capsys):
    with pytest.raises(SystemExit) as info:
        script.main(["--profile", "huge"])
    assert info.value.code == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err


@pytest.mark.parametrize(("env", "expected"), [("bench", "bench"), ("tiny", "tiny"), ("", "default")])
def test_profile_defaults_to_the_environment(script, monkeypatch, env, expected):
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", env)
    args = script.parse_args([])
    assert args.profile == expected and args.only is None
    assert script.parse_args(["--profile", "tiny", "--only", "clip", "x"]).only == ["clip", "x"]


def test_help_lists_every_profile(script, capsys):
    with pytest.raises(SystemExit) as info:
        script.parse_args(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for profile in ("default", "tiny", "bench"):
        assert f"  {profile} " in out
    assert "seeded random weights" in out
