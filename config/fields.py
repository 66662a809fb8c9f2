"""What the settings' fields are made of: the accepted values, how a field declares its
description and what it accepts (shown in errors and in docs/configuration.md), the error a bad
value raises, and the parsers of the text forms (flags, comma lists) several sections share.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import Field
from pydantic_settings import NoDecode

MiB = 1024 * 1024

Profile = Literal["default", "tiny", "bench"]
Device = Literal["auto", "cpu", "cuda"]
Engine = Literal["auto", "onnx", "torch"]
CpuPrecision = Literal["fp32", "int8"]
DinoV2Variant = Literal["small", "base", "large", "giant"]
TestExtract = Literal["simple", "combined"]
UrlPolicy = Literal["public", "allowlist", "off"]
AccessLog = Literal["json", "off"]
IndexKind = Literal["ivfpq", "hnsw"]
VectorDtype = Literal["float16", "float32"]
BatchWait = Literal["bounded", "bentoml"]

PROFILES: tuple[str, ...] = get_args(Profile)
PROFILE_HELP = {
    "default": "real pretrained weights (downloaded once by image-embed import-models)",
    "tiny": "same classes, tiny configs, seeded random weights: offline tests and demos",
    "bench": "default architectures with seeded random weights: offline speed measurements",
}
DEVICE_CHOICES: tuple[str, ...] = get_args(Device)
ENGINE_CHOICES: tuple[str, ...] = get_args(Engine)
CPU_PRECISIONS: tuple[str, ...] = get_args(CpuPrecision)
DINOV2_VARIANTS: tuple[str, ...] = get_args(DinoV2Variant)
TEST_EXTRACT_MODES: tuple[str, ...] = get_args(TestExtract)
URL_POLICIES: tuple[str, ...] = get_args(UrlPolicy)
ACCESS_LOG_MODES: tuple[str, ...] = get_args(AccessLog)
INDEX_KINDS: tuple[str, ...] = get_args(IndexKind)
VECTOR_DTYPES: tuple[str, ...] = get_args(VectorDtype)
# test-only crash points of the embedded index's writes (search/crash_points.py): POINT or POINT:N
INDEX_CRASH_AT = re.compile(r"^(?:(?:vectors_written|vectors_synced|committed)(?::[1-9][0-9]*)?)?$")
BATCH_WAIT_HELP = {
    "bounded": "a runner holds a request for company at most its model's max_batch_wait_ms "
    "(docs/operations.md, Batching), and only real queueing teaches it that waiting pays",
    "bentoml": "BentoML's own batching dispatcher, unchanged: after a burst, lone requests on an idle "
    "runner can wait about as long as the burst queued, 0.3-1.7 s measured (for comparison)",
}
MAX_GRID_SIDE = 4
# IMAGE_EMBED_EXTRA_CLIP entries: [name=]ARCH/TAG (models/open_clip_names.py reads them)
EXTRA_CLIP_ENTRY = re.compile(r"^(?:(?P<key>[a-z][a-z0-9_]{0,47})=)?(?P<arch>[A-Za-z0-9][\w.+-]*)/(?P<tag>[A-Za-z0-9][\w.+-]*)$")
FLAG_ACCEPTED = "1, true, yes, on, 0, false, no, off"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

CommaList = Annotated[tuple[str, ...], NoDecode]


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message says which and why."""


def field(default: Any, description: str, accepted: str = "", shown: str | None = None, **kw: Any) -> Any:
    """A field with its one-line description, what it accepts (errors and docs), and how its
    default reads in the docs when str(default) would not say it well."""
    extra = {"accepted": accepted, **({"shown_default": shown} if shown is not None else {})}
    return Field(default, description=description, json_schema_extra=extra, **kw)


def positive_int(default: int, description: str, minimum: int = 1, shown: str | None = None) -> Any:
    return field(default, description, f"an integer >= {minimum}", shown, ge=minimum)


def seconds(default: float, description: str) -> Any:
    return field(default, description, "a number of seconds > 0", gt=0)


def choices(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def parse_flag(value: Any) -> Any:
    """1/0, true/false, yes/no, on/off (any case) -> bool; other types pass to pydantic."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ValueError("is not a boolean; use 1 or 0")
    return value


def parse_comma_list(value: Any) -> Any:
    """'a, b,,c' -> ('a', 'b', 'c'); other types pass to pydantic."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value
