"""Model specs: frozen, keyword-only descriptions of every model the server can run.

A spec is data, not code: adding a variant means adding a spec. Everything a runner, the
preprocessing and the import script need to know about a model lives here, and the spec's
JSON form is stored as the BentoML model's metadata so `bentoml models list` shows it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

# The profiles a deployment chooses between with IMAGE_EMBED_PROFILE (declared with the variable).
from config.fields import PROFILE_HELP, PROFILES  # noqa: F401  (PROFILE_HELP: re-exported)

DEVICE_KINDS = ("cpu", "cuda")
# The normalizations the catalog's models were trained with, defined once.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's and BLIP's
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# A box in image pixels: (xmin, ymin, xmax, ymax) = PIL's crop box (left, top, right, bottom),
# max exclusive, so `image.crop(box)` is the region.
Box = tuple[int, int, int, int]
# Requests in flight per runner (BentoML's traffic.max_concurrency; beyond it the runner answers
# 429 at once and the gateway answers 503 with Retry-After), per device kind.
DEFAULT_MAX_CONCURRENCY = {"cpu": 64, "cuda": 64}
RESIZE_MODES = ("shortest", "squash", "letterbox")


@dataclass(frozen=True, kw_only=True)
class BatchLimits:
    """Adaptive-batching limits of one runner API on one kind of device.

    `max_latency_ms` is BentoML's shedding deadline: a queued request whose estimated
    completion exceeds it is refused with 503. On CPU it must cover a full queue of
    forwards, so it is seconds there and tens of milliseconds on a GPU.

    `max_batch_wait_ms` bounds the runner's deliberate wait for more requests to join a
    batch (Triton's `max_queue_delay_microseconds`): while the runner is idle, a request is
    held for company at most until the oldest queued request has waited this long
    (runners/batching_wait.py). Waiting behind a busy model is queueing, not bounded by it.
    About one forward's fixed cost: a few ms on CPU, where each image costs tens of ms and
    batching saves little; tens of ms on a GPU, where batching is most of the speed.
    """

    max_batch_size: int
    max_latency_ms: int
    max_batch_wait_ms: float

    def __post_init__(self) -> None:
        if self.max_batch_size < 2:
            raise ValueError("max_batch_size must be >= 2 (BentoML requires it for batchable APIs)")
        if self.max_latency_ms < 1:
            raise ValueError("max_latency_ms must be positive")
        if not 0 <= self.max_batch_wait_ms < self.max_latency_ms:
            raise ValueError("max_batch_wait_ms must be >= 0 and below max_latency_ms")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One model in one profile."""

    key: str  # what runners and APIs call it: "clip"
    runner: str  # the runner service hosting it ("dino" hosts dinov2, dinov3, dinov2_giant)
    profile: str  # one of PROFILES
    family: str  # the loader that builds it: "open_clip"
    display_name: str  # how the old services' APIs named it: "ViT-B/32"
    arch: str  # the library's architecture name: "ViT-B-32"
    arch_config: dict[str, Any] | None = None  # a custom config (tiny), else the library's own
    pretrained: str | None = None  # the library's pretrained tag; None = seeded random weights
    # The pretrained weights ship inside an installed package (facenet-pytorch's MTCNN): no
    # download, so every profile, tiny included, uses them.
    weights_bundled: bool = False
    seed: int = 0  # seed of the random weights when pretrained is None
    weights_source: str = ""  # where pretrained weights come from, for humans and errors
    gated: bool = False  # the hub repo needs an accepted license and a token (HF_TOKEN)
    input_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    interpolation: str = "bicubic"  # "bicubic" | "bilinear"
    # "shortest" (resize short side, center crop) | "squash" (to size x size) | "letterbox"
    # (long side to size, aspect kept, pasted top-left on a black size x size canvas: detectors)
    resize_mode: str = "shortest"
    # "shortest" only: the short side is resized to this before the center crop (None = input_size;
    # DINOv2's processor resizes to 256, then crops 224).
    resize_size: int | None = None
    # "shortest" only: how the center crop's offsets round, "round" (torchvision, open_clip, timm)
    # or "floor" (transformers' image processors: (size - crop) // 2).
    crop_rounding: str = "round"
    output_dim: int | None = 512  # embedding size; None for models that do not embed (detectors, captions)
    context_length: int | None = None  # text encoders only
    # The analyze operation that embeds with this model ("embed_dino_v2"), if any, and its
    # description in GET /available_operations/ (gateway/analyze/operations.py).
    analyze_task: str | None = None
    analyze_description: str = ""
    # api name -> device kind -> limits
    batching: dict[str, dict[str, BatchLimits]] = field(default_factory=dict)
    # device kind -> requests in flight for the runner hosting it (it takes the largest of its models')
    max_concurrency: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_CONCURRENCY))

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; expected one of {PROFILES}")
        if self.interpolation not in ("bicubic", "bilinear"):
            raise ValueError(f"unsupported interpolation {self.interpolation!r}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"unsupported resize_mode {self.resize_mode!r}")
        if self.crop_rounding not in ("round", "floor"):
            raise ValueError(f"unsupported crop_rounding {self.crop_rounding!r}")
        if self.resize_size is not None and self.resize_size < self.input_size:
            raise ValueError(f"resize_size {self.resize_size} is smaller than input_size {self.input_size}")
        for api, per_device in self.batching.items():
            missing = set(DEVICE_KINDS) - set(per_device)
            if missing:
                raise ValueError(f"{self.key}.{api}: batch limits missing for {sorted(missing)}")
        if self.analyze_task is not None and not self.analyze_description:
            raise ValueError(f"{self.key}: analyze_task {self.analyze_task!r} needs its analyze_description")
        if set(self.max_concurrency) != set(DEVICE_KINDS) or min(self.max_concurrency.values()) < 1:
            raise ValueError(f"{self.key}: max_concurrency needs a positive value for each of {DEVICE_KINDS}")

    @property
    def random_weights(self) -> bool:
        return self.pretrained is None

    @property
    def store_name(self) -> str:
        """The BentoML model-store name: readable, unique per architecture and weights."""
        return _tag_name(self._readable_name)

    @property
    def _readable_name(self) -> str:
        weights = "random" if self.random_weights else self.pretrained
        arch = "tiny" if self.profile == "tiny" else self.arch
        return f"{self.key}-{arch}-{weights}"

    @property
    def fingerprint(self) -> str:
        """A hash of what determines the weights; the model-store version."""
        identity = {
            "family": self.family,
            "arch": self.arch,
            "arch_config": self.arch_config,
            "pretrained": self.pretrained,
            "seed": self.seed if self.random_weights else None,
        }
        blob = json.dumps(identity, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def store_tag(self) -> str:
        """The entry of the weights (what torch loads); the model's identity (indexes record it)."""
        return f"{self.store_name}:{self.fingerprint}"

    @property
    def onnx_store_tag(self) -> str:
        """The entry of what ONNX Runtime serving reads (graphs, text tokenizer, logit scale),
        made from the weights by the import: the lean image packs it alone (models/store.py)."""
        return f"{_tag_name(self._readable_name + '-onnx')}:{self.fingerprint}"

    def batch_limits(self, api: str, device_kind: str) -> BatchLimits:
        try:
            return self.batching[api][device_kind]
        except KeyError:
            raise KeyError(f"no batch limits for {self.key}.{api} on {device_kind}") from None

    def to_metadata(self) -> dict[str, Any]:
        """JSON-safe form stored beside the weights in the model store."""
        data = asdict(self)
        data["store_tag"] = self.store_tag
        return _without_none(json.loads(json.dumps(data)))


def _without_none(value: Any) -> Any:
    """BentoML metadata accepts basic types only, not None: drop unset fields."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


MAX_TAG_NAME = 63  # BentoML refuses a longer tag name


def _tag_name(text: str) -> str:
    """A model-store name: the slug of `text`; a longer one than BentoML takes keeps its start
    and ends with a hash of the whole (so names that share a long start stay apart)."""
    slug = _slug(text)
    if len(slug) <= MAX_TAG_NAME:
        return slug
    digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
    return f"{slug[: MAX_TAG_NAME - 9].rstrip('-')}-{digest}"
