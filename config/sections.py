"""The sections of the settings: each holds the IMAGE_EMBED_* variables one part of the server
reads, declared here once (type, default, what it accepts, description). `Settings`
(config/settings.py) is all of them together, read from the environment, so the settings object
*is* each section: a module is handed the one object and typed with the section it reads,
and a test builds a section alone (`IntakeSettings(max_image_bytes=100)`).

Field `x` is the variable IMAGE_EMBED_X. The order of the sections and of their fields is the
order of docs/configuration.md.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_settings import NoDecode

from .allowlist import AllowRule
from .fields import (
    ACCESS_LOG_MODES,
    BATCH_WAIT_HELP,
    CPU_PRECISIONS,
    DEVICE_CHOICES,
    DINOV2_VARIANTS,
    ENGINE_CHOICES,
    EXTRA_CLIP_ENTRY,
    FLAG_ACCEPTED,
    INDEX_CRASH_AT,
    INDEX_KINDS,
    MAX_GRID_SIDE,
    PROFILE_HELP,
    PROFILES,
    TEST_EXTRACT_MODES,
    URL_POLICIES,
    VECTOR_DTYPES,
    AccessLog,
    BatchWait,
    CommaList,
    CpuPrecision,
    Device,
    DinoV2Variant,
    Engine,
    IndexKind,
    MiB,
    Profile,
    TestExtract,
    UrlPolicy,
    VectorDtype,
    choices,
    field,
    parse_comma_list,
    parse_flag,
    positive_int,
    seconds,
)


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSettings(Section):
    """Which models are served, and on what (models/, runners/)."""

    profile: Profile = field(
        "default", "which weights: pretrained, tiny (offline tests, demos) or bench (real sizes, random weights)",
        "; ".join(f"{p}: {PROFILE_HELP[p]}" for p in PROFILES),
    )
    models: CommaList = field(
        (), "comma-separated model keys to serve (empty: every model)", "comma-separated model keys", shown="(all)"
    )
    device: Device = field("auto", "where models run: auto (CUDA when PyTorch sees one), cpu or cuda (fp16)",
                           choices(DEVICE_CHOICES))
    require_gpu: bool = field(False, "1: refuse to start without a GPU", FLAG_ACCEPTED, shown="0")
    engine: Engine = field(
        "auto", "what runs the embedding models (CLIP, DINOv2, DINOv3, InternViT): onnx (ONNX Runtime) or torch; "
        "auto: onnx on CPU, torch on CUDA. Detectors and captioner always run on torch",
        choices(ENGINE_CHOICES), shown="auto",
    )
    cpu_precision: CpuPrecision = field(
        "fp32", "ONNX engine on CPU: fp32, or int8 (dynamically quantized graphs, made at import)",
        choices(CPU_PRECISIONS),
    )
    batch_wait: BatchWait = field(
        "bounded", "how a runner waits for a batch to fill: bounded, or BentoML's own (bentoml)",
        "; ".join(f"{k}: {v}" for k, v in BATCH_WAIT_HELP.items()),
    )
    test_forward_delay_ms: int = positive_int(
        0, "tests only, tiny profile only (ignored otherwise): each runner forward also sleeps this many ms "
        "per item, so a tiny model queues like a real one", minimum=0,
    )
    extra_clip: CommaList = field(
        (), "more CLIP models to serve beside `clip`, each its own runner: comma-separated open_clip "
        "architecture/pretrained-tag pairs, each optionally named (the model key; default: clip_ + the "
        "pair in lower case, other characters as _). Read at start: import and serve with the same value",
        "[name=]ARCH/TAG entries, e.g. ViT-L-14/openai,rn=RN50x16/openai", shown="(none)",
    )
    dinov2_variant: DinoV2Variant = field(
        "base", "DINOv2 size (read at start; import and serve with the same value)", choices(DINOV2_VARIANTS)
    )

    _model_flags = field_validator("require_gpu", mode="before")(parse_flag)
    _model_lists = field_validator("models", "extra_clip", mode="before")(parse_comma_list)

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


class LevelSettings(Section):
    """InternViT's three-level views of an image and their fusion (models/views.py)."""

    internvit_focus_area: float = field(
        0.5, "three-level: the focused view's share of the image's area", "a number, 0 < focus area <= 1", gt=0, le=1
    )
    internvit_tiles: Annotated[tuple[int, int], NoDecode] = field(
        (2, 2), "three-level: tile grid, rows x columns", f"rows x columns like 2x2, 1..{MAX_GRID_SIDE} each", shown="2x2"
    )
    internvit_tile_overlap: float = field(
        0.2, "three-level: share of a tile's side that neighbouring tiles overlap", "a number, 0 <= overlap < 1",
        ge=0, lt=1,
    )
    internvit_level_weights: Annotated[tuple[float, float, float], NoDecode] = field(
        (0.5, 0.25, 0.25), "three-level: weights of global, focused, tiles in `combined`",
        "three numbers global,focused,tiles, each >= 0, with a positive sum", shown="0.5,0.25,0.25",
    )
    test_extract: TestExtract = field(
        "simple", "what /embedding/test_extract returns: simple or combined (three-level)",
        choices(TEST_EXTRACT_MODES),
    )

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

    @property
    def n_tiles(self) -> int:
        rows, cols = self.internvit_tiles
        return rows * cols

    @property
    def n_views(self) -> int:
        return 2 + self.n_tiles

    def describe_levels(self) -> dict[str, Any]:
        global_, focused, tiles = self.internvit_level_weights
        return {
            "focus_area": self.internvit_focus_area,
            "tiles": "{}x{}".format(*self.internvit_tiles),
            "tile_overlap": self.internvit_tile_overlap,
            "weights": {"global": global_, "focused": focused, "tiles": tiles},
        }


class IntakeSettings(Section):
    """Which image URLs are fetched, and the limits of every image taken in (intake/)."""

    url_allowlist: CommaList = field(
        (), "comma-separated hosts, IPs or CIDR networks, optionally :port, admitted although private",
        "host, IP or network entries, optionally :port (images.internal,10.2.0.0/16)", shown="(none)",
    )
    url_policy: UrlPolicy = field(
        "public", "which image URLs are fetched: public (and the allow-list), allowlist (only it), off (none)",
        choices(URL_POLICIES),
    )
    max_image_bytes: int = positive_int(20 * MiB, "largest image: upload, download or decoded base64", shown="20 MiB")
    max_image_pixels: int = positive_int(50_000_000, "largest width x height decoded", shown="50,000,000")
    min_image_side: int = positive_int(16, "smallest width or height accepted, in pixels")
    jpeg_draft: bool = field(
        False, "decode a large JPEG at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) when the model's input is "
        "that much smaller: 4-8x less decode work on photos; pixels then differ slightly from the reference "
        "pipeline's (docs/performance.md); 0: exact decode. Encode and index only, never analyze's crops",
        FLAG_ACCEPTED, shown="0",
    )
    fetch_connect_timeout: float = seconds(5.0, "seconds to connect to an image URL")
    fetch_timeout: float = seconds(20.0, "seconds for a whole download, redirects included")
    fetch_max_redirects: int = positive_int(5, "redirect hops followed, each re-checked", minimum=0)

    _intake_flags = field_validator("jpeg_draft", mode="before")(parse_flag)
    _intake_lists = field_validator("url_allowlist", mode="before")(parse_comma_list)

    @field_validator("url_allowlist", mode="after")
    @classmethod
    def _allow_rules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                AllowRule.parse(entry)
            except ValueError as exc:
                raise ValueError(str(exc).replace("IMAGE_EMBED_URL_ALLOWLIST ", "")) from None
        return value

    @functools.cached_property
    def allow_rules(self) -> tuple[AllowRule, ...]:
        """url_allowlist's entries, parsed (once per settings object)."""
        return tuple(AllowRule.parse(entry) for entry in self.url_allowlist)


class GatewaySettings(Section):
    """The shape of a request the gateway accepts, and how many it works on at a time."""

    max_body_bytes: int = positive_int(64 * MiB, "largest request body, all parts together", shown="64 MiB")
    max_items: int = positive_int(64, "images per batch call such as encode_images")
    max_texts: int = positive_int(256, "texts per encode_texts call")
    max_text_chars: int = positive_int(10_000, "characters per text (CLIP reads the first 77 tokens)")
    max_in_flight: int = positive_int(64, "requests a gateway worker works on at a time; beyond it 429 `overloaded`")


class AnalyzeSettings(Section):
    """The analyze API (gateway/analyze/)."""

    max_tasks: int = positive_int(32, "tasks per analyze request")
    classifiers_dir: Path = field(
        Path("trained_classifiers"), "where `classify` reads best_models.json and the classifiers", "a directory",
    )


class AccessSettings(Section):
    """Who may call the server, and the access log (gateway/auth.py, gateway/access_log.py)."""

    api_keys: CommaList = field(
        (), "comma-separated API keys (16+ characters); set: every route but the probes needs one",
        "comma-separated keys of 16+ characters", shown="(none: open)",
    )
    api_keys_file: Path | None = field(None, "a file with one key per line (mounted secrets); adds to the above",
                                       "a readable file", shown="(none)")
    access_log: AccessLog = field("json", "json: one JSON line per request on stdout; off", choices(ACCESS_LOG_MODES))

    _access_lists = field_validator("api_keys", mode="before")(parse_comma_list)


class SearchSettings(Section):
    """Where the search indexes live and how they are searched (search/)."""

    data_dir: Path | None = field(
        None, "where search indexes live", "a directory", shown="$XDG_DATA_HOME/image-embed (~/.local/share/image-embed)"
    )
    index_kind: IndexKind = field("ivfpq", "the approximate index: ivfpq or hnsw", choices(INDEX_KINDS))
    index_exact_max: int = positive_int(20_000, "live items up to which search is exact", minimum=0)
    index_candidates: int = positive_int(
        200, "approximate candidates re-ranked exactly, up to 1M live items; above, this x sqrt(n / 1M)"
    )
    index_nlist: int = positive_int(0, "IVF lists (0: about 4 x sqrt(n))", minimum=0)
    index_nprobe: int = positive_int(16, "IVF lists searched per query")
    index_hnsw_m: int = positive_int(32, "HNSW links per node", minimum=4)
    index_ef_search: int = positive_int(64, "HNSW search breadth")
    index_tail_max: int = positive_int(10_000, "new items searched exactly before the index is extended")
    index_vector_dtype: VectorDtype = field(
        "float16", "how a new embedded index stores its vectors on disk (an existing index keeps its own): float16 "
        "(half the disk and page cache; scores within 1e-4 of float32's) or float32", choices(VECTOR_DTYPES),
    )
    test_index_crash_at: str = field(
        "", "tests only: the process kills itself (SIGKILL) at this point of an embedded index's write: "
        "vectors_written, vectors_synced or committed, optionally :N for the N-th write (default the first)",
        "empty, or POINT or POINT:N", shown="(none)", pattern=INDEX_CRASH_AT.pattern,
    )
    search_url: str | None = field(
        None, "postgresql://user:password@host:port/db: indexes in PostgreSQL + pgvector, shared by every server "
        "that uses it (unset: embedded SQLite under IMAGE_EMBED_DATA_DIR)", "a postgresql:// URL", shown="(none: SQLite)",
    )
    search_pool_size: int = positive_int(8, "PostgreSQL: connections per index runner process")
    search_connect_timeout: float = seconds(5.0, "PostgreSQL: seconds to connect (or wait for a pooled connection)")
    search_statement_timeout_ms: int = positive_int(30_000, "PostgreSQL: milliseconds a statement may run")
    search_ef_search: int = positive_int(100, "PostgreSQL: hnsw.ef_search (raised to the depth a query asks for)")
    search_hnsw_m: int = positive_int(16, "PostgreSQL: HNSW links per node (for indexes created from now on)", minimum=2)
    search_ef_construction: int = positive_int(64, "PostgreSQL: HNSW build breadth (indexes created from now on)", minimum=4)

    @field_validator("search_url", mode="after")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (or unset, for the embedded SQLite indexes)")
        return value

    def parameters(self, prefix: str) -> dict[str, Any]:
        """This section's fields named `prefix` + x, as {x: value}: the parameters of the
        approximate index ("index_", search/ann.py) or of the PostgreSQL store ("search_")."""
        names = (name for name in SearchSettings.model_fields if name.startswith(prefix))
        return {name.removeprefix(prefix): getattr(self, name) for name in names}


class ThumbnailSettings(Section):
    """The thumbnails stored with indexed images (gateway/thumbnails.py)."""

    thumbnails: bool = field(
        True, "store a small WebP thumbnail of each image indexed (for the UI, GET /thumbnail); 0: none",
        FLAG_ACCEPTED, shown="1",
    )
    thumbnail_size: int = field(256, "longest side of a stored thumbnail, in pixels", "an integer from 32 to 512", ge=32, le=512)

    _thumbnail_flags = field_validator("thumbnails", mode="before")(parse_flag)
