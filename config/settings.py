"""Every IMAGE_EMBED_* environment variable of the server, in one pydantic-settings class.

`load_settings()` reads and validates them all; a bad value raises SettingsError naming the
variable, the value and what is accepted, so the server does not start. The per-area settings
(IntakeSettings, GatewaySettings, LevelSettings, SearchSettings, ...) are views built from this
object. docs/configuration.md is generated from it (scripts/settings_table.py).

This module imports nothing from the project, so every package can import it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "IMAGE_EMBED_"
logger = logging.getLogger("image_embed.config")
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
BatchWait = Literal["bounded", "bentoml"]

PROFILES: tuple[str, ...] = get_args(Profile)
PROFILE_HELP = {
    "default": "real pretrained weights (downloaded once by scripts/import_models.py)",
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
BATCH_WAIT_HELP = {
    "bounded": "a runner holds a request for company at most its model's max_batch_wait_ms "
    "(docs/operations.md, Batching), and only real queueing teaches it that waiting pays",
    "bentoml": "BentoML's own batching dispatcher, unchanged: after a burst, lone requests on an idle "
    "runner can wait about as long as the burst queued, 0.3-1.7 s measured (for comparison)",
}
MAX_GRID_SIDE = 4
# IMAGE_EMBED_EXTRA_CLIP entries: [name=]ARCH/TAG (models/open_clip_names.py reads them)
EXTRA_CLIP_ENTRY = re.compile(r"^(?:(?P<key>[a-z][a-z0-9_]{0,47})=)?(?P<arch>[A-Za-z0-9][\w.+-]*)/(?P<tag>[A-Za-z0-9][\w.+-]*)$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message says which and why."""


def _field(default: Any, description: str, accepted: str = "", shown: str | None = None, **kw: Any) -> Any:
    """A field with its one-line description, what it accepts (errors and docs), and how its
    default reads in the docs when str(default) would not say it well."""
    extra = {"accepted": accepted, **({"shown_default": shown} if shown is not None else {})}
    return Field(default, description=description, json_schema_extra=extra, **kw)


def _positive_int(default: int, description: str, minimum: int = 1, shown: str | None = None) -> Any:
    return _field(default, description, f"an integer >= {minimum}", shown, ge=minimum)


def _seconds(default: float, description: str) -> Any:
    return _field(default, description, "a number of seconds > 0", gt=0)


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(values)


CommaList = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    """The server's configuration; field `x` is the variable IMAGE_EMBED_X."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True, frozen=True, extra="ignore"
    )

    # models and devices
    profile: Profile = _field(
        "default", "which weights: pretrained, tiny (offline tests, demos) or bench (real sizes, random weights)",
        "; ".join(f"{p}: {PROFILE_HELP[p]}" for p in PROFILES),
    )
    models: CommaList = _field(
        (), "comma-separated model keys to serve (empty: every model)", "comma-separated model keys", shown="(all)"
    )
    device: Device = _field("auto", "where models run: auto (CUDA when PyTorch sees one), cpu or cuda (fp16)",
                            _choices(DEVICE_CHOICES))
    require_gpu: bool = _field(False, "1: refuse to start without a GPU", "1, true, yes, on, 0, false, no, off", shown="0")
    engine: Engine = _field(
        "auto", "what runs the embedding models (CLIP, DINOv2, DINOv3, InternViT): onnx (ONNX Runtime) or torch; "
        "auto: onnx on CPU, torch on CUDA. Detectors and captioner always run on torch",
        _choices(ENGINE_CHOICES), shown="auto",
    )
    cpu_precision: CpuPrecision = _field(
        "fp32", "ONNX engine on CPU: fp32, or int8 (dynamically quantized graphs, made at import)",
        _choices(CPU_PRECISIONS),
    )
    batch_wait: BatchWait = _field(
        "bounded", "how a runner waits for a batch to fill: bounded, or BentoML's own (bentoml)",
        "; ".join(f"{k}: {v}" for k, v in BATCH_WAIT_HELP.items()),
    )
    test_forward_delay_ms: int = _positive_int(
        0, "tests only, tiny profile only (ignored otherwise): each runner forward also sleeps this many ms "
        "per item, so a tiny model queues like a real one", minimum=0,
    )
    extra_clip: CommaList = _field(
        (), "more CLIP models to serve beside `clip`, each its own runner: comma-separated open_clip "
        "architecture/pretrained-tag pairs, each optionally named (the model key; default: clip_ + the "
        "pair in lower case, other characters as _). Read at start: import and serve with the same value",
        "[name=]ARCH/TAG entries, e.g. ViT-L-14/openai,rn=RN50x16/openai", shown="(none)",
    )
    dinov2_variant: DinoV2Variant = _field(
        "base", "DINOv2 size (read at start; import and serve with the same value)", _choices(DINOV2_VARIANTS)
    )
    # InternViT three-level views
    internvit_focus_area: float = _field(
        0.5, "three-level: the focused view's share of the image's area", "a number, 0 < focus area <= 1", gt=0, le=1
    )
    internvit_tiles: Annotated[tuple[int, int], NoDecode] = _field(
        (2, 2), "three-level: tile grid, rows x columns", f"rows x columns like 2x2, 1..{MAX_GRID_SIDE} each", shown="2x2"
    )
    internvit_tile_overlap: float = _field(
        0.2, "three-level: share of a tile's side that neighbouring tiles overlap", "a number, 0 <= overlap < 1",
        ge=0, lt=1,
    )
    internvit_level_weights: Annotated[tuple[float, float, float], NoDecode] = _field(
        (0.5, 0.25, 0.25), "three-level: weights of global, focused, tiles in `combined`",
        "three numbers global,focused,tiles, each >= 0, with a positive sum", shown="0.5,0.25,0.25",
    )
    test_extract: TestExtract = _field(
        "simple", "what /embedding/test_extract returns: simple or combined (three-level)",
        _choices(TEST_EXTRACT_MODES),
    )
    # image intake
    url_allowlist: CommaList = _field(
        (), "comma-separated hosts, IPs or CIDR networks, optionally :port, admitted although private",
        "host, IP or network entries, optionally :port (images.internal,10.2.0.0/16)", shown="(none)",
    )
    url_policy: UrlPolicy = _field(
        "public", "which image URLs are fetched: public (and the allow-list), allowlist (only it), off (none)",
        _choices(URL_POLICIES),
    )
    max_image_bytes: int = _positive_int(20 * MiB, "largest image: upload, download or decoded base64", shown="20 MiB")
    max_image_pixels: int = _positive_int(50_000_000, "largest width x height decoded", shown="50,000,000")
    min_image_side: int = _positive_int(16, "smallest width or height accepted, in pixels")
    jpeg_draft: bool = _field(
        False, "decode a large JPEG at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) when the model's input is "
        "that much smaller: 4-8x less decode work on photos; pixels then differ slightly from the reference "
        "pipeline's (docs/performance.md); 0: exact decode. Encode and index only, never analyze's crops",
        "1, true, yes, on, 0, false, no, off", shown="0",
    )
    fetch_connect_timeout: float = _seconds(5.0, "seconds to connect to an image URL")
    fetch_timeout: float = _seconds(20.0, "seconds for a whole download, redirects included")
    fetch_max_redirects: int = _positive_int(5, "redirect hops followed, each re-checked", minimum=0)
    # gateway
    max_body_bytes: int = _positive_int(64 * MiB, "largest request body, all parts together", shown="64 MiB")
    max_items: int = _positive_int(64, "images per batch call such as encode_images")
    max_texts: int = _positive_int(256, "texts per encode_texts call")
    max_text_chars: int = _positive_int(10_000, "characters per text (CLIP reads the first 77 tokens)")
    max_in_flight: int = _positive_int(64, "requests a gateway worker works on at a time; beyond it 429 `overloaded`")
    max_tasks: int = _positive_int(32, "tasks per analyze request")
    classifiers_dir: Path = _field(
        Path("trained_classifiers"), "where `classify` reads best_models.json and the classifiers", "a directory",
    )
    api_keys: CommaList = _field(
        (), "comma-separated API keys (16+ characters); set: every route but the probes needs one",
        "comma-separated keys of 16+ characters", shown="(none: open)",
    )
    api_keys_file: Path | None = _field(None, "a file with one key per line (mounted secrets); adds to the above",
                                        "a readable file", shown="(none)")
    access_log: AccessLog = _field("json", "json: one JSON line per request on stdout; off", _choices(ACCESS_LOG_MODES))
    # search
    data_dir: Path | None = _field(
        None, "where search indexes live", "a directory", shown="$XDG_DATA_HOME/image-embed (~/.local/share/image-embed)"
    )
    index_kind: IndexKind = _field("ivfpq", "the approximate index: ivfpq or hnsw", _choices(INDEX_KINDS))
    index_exact_max: int = _positive_int(20_000, "live items up to which search is exact", minimum=0)
    index_candidates: int = _positive_int(200, "approximate candidates re-ranked exactly")
    index_nlist: int = _positive_int(0, "IVF lists (0: about 4 x sqrt(n))", minimum=0)
    index_nprobe: int = _positive_int(16, "IVF lists searched per query")
    index_hnsw_m: int = _positive_int(32, "HNSW links per node", minimum=4)
    index_ef_search: int = _positive_int(64, "HNSW search breadth")
    index_tail_max: int = _positive_int(10_000, "new items searched exactly before the index is extended")
    search_url: str | None = _field(
        None, "postgresql://user:password@host:port/db: indexes in PostgreSQL + pgvector, shared by every server "
        "that uses it (unset: embedded SQLite under IMAGE_EMBED_DATA_DIR)", "a postgresql:// URL", shown="(none: SQLite)",
    )
    search_pool_size: int = _positive_int(8, "PostgreSQL: connections per index runner process")
    search_connect_timeout: float = _seconds(5.0, "PostgreSQL: seconds to connect (or wait for a pooled connection)")
    search_statement_timeout_ms: int = _positive_int(30_000, "PostgreSQL: milliseconds a statement may run")
    search_ef_search: int = _positive_int(100, "PostgreSQL: hnsw.ef_search (raised to the depth a query asks for)")
    search_hnsw_m: int = _positive_int(16, "PostgreSQL: HNSW links per node (for indexes created from now on)", minimum=2)
    search_ef_construction: int = _positive_int(64, "PostgreSQL: HNSW build breadth (indexes created from now on)", minimum=4)
    thumbnails: bool = _field(
        True, "store a small WebP thumbnail of each image indexed (for the UI, GET /thumbnail); 0: none",
        "1, true, yes, on, 0, false, no, off", shown="1",
    )
    thumbnail_size: int = _field(256, "longest side of a stored thumbnail, in pixels", "an integer from 32 to 512", ge=32, le=512)

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

    @field_validator("search_url", mode="after")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (or unset, for the embedded SQLite indexes)")
        return value

    @field_validator("require_gpu", "thumbnails", "jpeg_draft", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError("is not a boolean; use 1 or 0")
        return value

    @field_validator("models", "url_allowlist", "api_keys", "extra_clip", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("models", mode="after")
    @classmethod
    def _lower_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)

    @field_validator("extra_clip", mode="after")
    @classmethod
    def _clip_entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if not EXTRA_CLIP_ENTRY.match(entry):
                raise ValueError(f"{entry!r} is not [name=]ARCH/TAG (a name: lower-case letters, digits, _)")
        return value

    @field_validator("url_allowlist", mode="after")
    @classmethod
    def _allow_rules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from intake.settings import AllowRule  # parsed where it is used; imported late (no cycle)

        for entry in value:
            try:
                AllowRule.parse(entry)
            except ValueError as exc:
                raise ValueError(str(exc).replace("IMAGE_EMBED_URL_ALLOWLIST ", "")) from None
        return value

    @field_validator("internvit_tiles", mode="before")
    @classmethod
    def _grid(cls, value: Any) -> Any:
        if isinstance(value, str):
            rows, sep, cols = value.strip().lower().partition("x")
            if not sep or not rows.strip().isdigit() or not cols.strip().isdigit():
                raise ValueError("must look like 2x2 (rows x columns)")
            value = (int(rows), int(cols))
        if not all(1 <= side <= MAX_GRID_SIDE for side in value):
            raise ValueError(f"has a side outside 1..{MAX_GRID_SIDE}")
        return value

    @field_validator("internvit_level_weights", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = tuple(float(v) for v in value.split(","))
            except ValueError:
                raise ValueError("must be three numbers: global,focused,tiles") from None
        if len(value) != 3:
            raise ValueError("must be three numbers: global,focused,tiles")
        if min(value) < 0 or sum(value) <= 0:
            raise ValueError("must be three numbers >= 0 with a positive sum")
        return value


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
        if _is_choice(annotation) and accepted(field) == _choices(get_args(annotation)):
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
