"""docs/configuration.md, generated from config.settings.Settings (scripts/settings_table.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from .settings import Settings, accepted, env_name

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
HEADER = """# Configuration

Every `IMAGE_EMBED_*` environment variable of the server (all optional). They are declared,
validated and described once, in the sections of `config/sections.py`, and read together by
`Settings` (`config/settings.py`); the server reads them once at start, and a bad value stops it
with a message naming the variable, the value and what is accepted. Names are case-insensitive;
a blank value means the default.

This page is generated: edit `config/sections.py`, then run
`.venv/bin/python -m scripts.settings_table --write` (tests/config/test_docs.py checks it).

| variable | type | default | accepted | description |
|---|---|---|---|---|
"""
FOOTER = """
Other variables the server reads keep their own meaning: `BENTOML_CONFIG` (BentoML runtime
config, e.g. `configuration.yaml`), `BENTOML_HOME` (the model store), `HF_TOKEN` / `HF_ENDPOINT`
(imports from the Hugging Face hub), `CUDA_VISIBLE_DEVICES`, `XDG_DATA_HOME` (the default data
directory's parent).
"""
_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "path"}


def type_label(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return "choice"
    if annotation in _TYPES:
        return _TYPES[annotation]
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is tuple or (args and get_origin(args[0]) is tuple):
        inner = get_args(args[0] if args and get_origin(args[0]) is tuple else annotation)
        return "list" if Ellipsis in inner else f"{len(inner)} values"
    if len(args) == 1:
        return type_label(args[0])
    return str(annotation)


def default_label(name: str) -> str:
    field = Settings.model_fields[name]
    extra = field.json_schema_extra or {}
    if "shown_default" in extra:
        return str(extra["shown_default"])
    return f"`{field.default}`"


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        cells = [type_label(field.annotation), default_label(name), accepted(name), field.description or ""]
        rows.append("| " + " | ".join([f"`{env_name(name)}`", *(c.replace("|", "\\|") for c in cells)]) + " |")
    return HEADER + "\n".join(rows) + "\n" + FOOTER
