"""More CLIP models by name (IMAGE_EMBED_EXTRA_CLIP), each served beside `clip` by its own runner.

    IMAGE_EMBED_EXTRA_CLIP=ViT-L-14/openai,rn=RN50x16/openai

Each entry (models/open_clip_names.py) becomes a model of the open_clip family in every profile:
default (the pretrained tag's weights), bench (the architecture, random weights) and tiny (a
tiny twin of the same kind), with its own runner named after its key, its own batch limits and
its own model-store entry. The setting is read when the catalog loads: set the same value for
image-embed import-models and the server. `clip` itself stays ViT-B/32 with OpenAI's weights.
"""

from __future__ import annotations

from config.settings import load_settings

from ..open_clip_names import ClipEntry, describe, parse_entries
from ..registry import register_provider
from ..specs import BatchLimits, ModelSpec

# Larger CLIPs than ViT-B/32: smaller batches on a CPU, the same shedding deadlines.
BATCHING = {
    "encode_images": {
        "cpu": BatchLimits(max_batch_size=8, max_latency_ms=30_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=64, max_latency_ms=500, max_batch_wait_ms=20),
    },
    "encode_texts": {
        "cpu": BatchLimits(max_batch_size=64, max_latency_ms=20_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=256, max_latency_ms=500, max_batch_wait_ms=20),
    },
}


def spec_of(entry: ClipEntry, profile: str) -> ModelSpec:
    fields = describe(entry, profile)
    pretrained = entry.pretrained if profile == "default" else None
    return ModelSpec(
        key=entry.key,
        runner=entry.key,
        profile=profile,
        family="open_clip",
        display_name=entry.name,
        arch=entry.arch,
        pretrained=pretrained,
        seed=entry.seed,
        weights_source=f"open_clip pretrained tag {entry.pretrained!r} of {entry.arch}" if pretrained else "",
        crop_rounding="round",
        batching=BATCHING,
        max_concurrency={"cpu": 64, "cuda": 256},
        **fields,
    )


ENTRIES = parse_entries(load_settings().extra_clip)
if ENTRIES:
    register_provider(lambda profile: [spec_of(entry, profile) for entry in ENTRIES])
