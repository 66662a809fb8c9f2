"""docs/configuration.md is the table generated from config.settings.Settings."""

from __future__ import annotations

import importlib

from config.docs import DOC_PATH, render
from config.settings import Settings, env_name


def test_docs_table_matches_the_settings_class():
    assert DOC_PATH.read_text() == render(), "docs/configuration.md is out of date: run .venv/bin/python -m scripts.settings_table --write"


def test_every_variable_has_a_row():
    text = render()
    for name in Settings.model_fields:
        assert f"| `{env_name(name)}` |" in text


def test_script_check_and_write(tmp_path, monkeypatch, capsys):
    script = importlib.import_module("scripts.settings_table")
    assert script.main(["--check"]) == 0
    target = tmp_path / "configuration.md"
    monkeypatch.setattr(script, "DOC_PATH", target)
    assert script.main(["--check"]) == 1  # missing
    assert script.main(["--write"]) == 0 and target.read_text() == render()
    target.write_text(render().replace("HNSW search breadth", "HNSW breadth"))
    assert script.main(["--check"]) == 1  # edited by hand
