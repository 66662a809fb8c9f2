"""CLIP ViT-B/32 (open_clip), image and text towers, 512-d L2-normalized embeddings."""

from __future__ import annotations

from ..registry import register
from ..specs import OPENAI_MEAN, OPENAI_STD, BatchLimits, ModelSpec


# Batch limits measured with `python -m bench` (docs/operations.md, "Batching"). On CPU one
# ViT-B/32 forward costs ~40-70 ms per image, so the shedding deadline covers a full queue.
BATCHING = {
    "encode_images": {
        "cpu": BatchLimits(max_batch_size=16, max_latency_ms=20_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=128, max_latency_ms=500, max_batch_wait_ms=20),
    },
    "encode_texts": {
        "cpu": BatchLimits(max_batch_size=64, max_latency_ms=20_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=256, max_latency_ms=500, max_batch_wait_ms=20),
    },
}

_COMMON = dict(
    key="clip",
    runner="clip",
    family="open_clip",
    display_name="ViT-B/32",
    input_size=224,
    mean=OPENAI_MEAN,
    std=OPENAI_STD,
    interpolation="bicubic",
    resize_mode="shortest",
    output_dim=512,
    context_length=77,
    analyze_task="embed_clip_vit_b_32",
    analyze_description="Generates an embedding using the CLIP ViT-B/32 model.",
    batching=BATCHING,
    max_concurrency={"cpu": 64, "cuda": 256},
)

# OpenAI's weights were trained with QuickGELU: open_clip's "ViT-B-32" + "openai" would
# build a GELU model and only warn, so the quickgelu architecture is the correct one.
register(
    ModelSpec(
        profile="default",
        arch="ViT-B-32-quickgelu",
        pretrained="openai",
        weights_source="open_clip pretrained tag 'openai' (Hugging Face hub: timm/vit_base_patch32_clip_224.openai)",
        **_COMMON,
    )
)
register(ModelSpec(profile="bench", arch="ViT-B-32-quickgelu", seed=0, **_COMMON))
register(
    ModelSpec(
        profile="tiny",
        arch="tiny-clip-vit-32",
        arch_config={
            "embed_dim": 512,
            "quick_gelu": True,
            "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
        },
        seed=0,
        **_COMMON,
    )
)
