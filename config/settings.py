"""Every IMAGE_EMBED_* environment variable of the server, in one pydantic-settings class.

`Settings` is the union of the sections of config/sections.py, where each variable is declared
once; a module reads the one settings object through the section it needs (a Settings is an
IntakeSettings, a SearchSettings, ...). `load_settings()` reads and validates them all; a bad
value raises SettingsError naming the variable, the value and what is accepted, so the server
does not start. docs/configuration.md is generated from this class (scripts/settings_table.py).

The config package imports nothing else from the project, so every package can import it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from typing import Any, Literal, get_args

from pydantic import ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import sections
from .fields import SettingsError, choices

ENV_PREFIX = "IMAGE_EMBED_"
logger = logging.getLogger("image_embed.config")


class Settings(  # the fields come in the reverse order of these bases: ModelSettings' first
    sections.ThumbnailSettings,
    sections.SearchSettings,
    sections.AccessSettings,
    sections.AnalyzeSettings,
    sections.GatewaySettings,
    sections.IntakeSettings,
    sections.LevelSettings,
    sections.ModelSettings,
    BaseSettings,
):
    """The server's configuration; field `x` is the variable IMAGE_EMBED_X."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True, frozen=True, extra="ignore"
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_default(cls, data: Any) -> Any:
        """Values are stripped; a blank one means the default (as an unset variable)."""
        if not isinstance(data, dict):
            return data
        out = {}
        for key, value in data.items():
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    continue
                field = cls.model_fields.get(key)
                if field is not None and _is_choice(field.annotation):
                    value = value.lower()
            out[key] = value
        return out


def _is_choice(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is Literal


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def accepted(field: str) -> str:
    extra = Settings.model_fields[field].json_schema_extra or {}
    return str(extra.get("accepted", ""))


_PLAIN = {  # pydantic's error types, said plainly
    "int_parsing": "not an integer",
    "int_from_float": "not an integer",
    "float_parsing": "not a number",
}


def _explain(exc: ValidationError) -> SettingsError:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        if field not in Settings.model_fields:
            lines.append(err["msg"])
            continue
        raw = err.get("input")
        if field == "search_url" and isinstance(raw, str):  # never echo a password
            raw = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)
        reason = _PLAIN.get(err["type"], err["msg"].removeprefix("Value error, "))
        annotation = Settings.model_fields[field].annotation
        if _is_choice(annotation) and accepted(field) == choices(get_args(annotation)):
            lines.append(f"{env_name(field)}={raw!r} is not one of {accepted(field)}")
        elif _is_choice(annotation):  # choices with their meaning
            lines.append(f"{env_name(field)}={raw!r} is unknown. Choose one of: {accepted(field)}")
        else:
            lines.append(f"{env_name(field)}={raw!r} is not accepted ({reason}); use {accepted(field)}")
    return SettingsError("; ".join(lines))


@functools.lru_cache(maxsize=16)
def _parse(environment: tuple[tuple[str, str], ...]) -> Settings:
    unknown = sorted(name for name, _ in environment if name[len(ENV_PREFIX):].lower() not in Settings.model_fields)
    if unknown:  # a typo would otherwise be silently ignored
        logger.warning("unknown settings ignored (docs/configuration.md lists them all): %s", ", ".join(unknown))
    try:
        return Settings()
    except ValidationError as exc:
        raise _explain(exc) from None


def load_settings() -> Settings:
    """The settings of the current environment, validated. Parsed once per distinct set of
    IMAGE_EMBED_* variables, so calling it again is cheap and sees a changed environment
    (tests, scripts that set variables before building anything)."""
    environment = tuple(sorted((k.upper(), v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)))
    return _parse(environment)
