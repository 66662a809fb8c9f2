"""DINOv2 (transformers `Dinov2Model`): the CLS token after the final layer norm, L2-normalized.

Two model keys:

    dinov2         the variant chosen by IMAGE_EMBED_DINOV2_VARIANT (default: base)
    dinov2_giant   always ViT-g/14 (1536-d), the model of the old `/embedding/fast_extract` route

    IMAGE_EMBED_DINOV2_VARIANT   small | base | large | giant   (default: base; `dinov2` only)

The variant is read when this module registers its specs (at import), so it must be set before
the server or a script starts; it picks the default profile's checkpoint (facebook/dinov2-<variant>)
and the bench profile's architecture. The tiny profile is the same for every variant; dinov2_giant's
tiny twin is its own (hidden size 48, SwiGLU as ViT-g/14, another seed), so tests tell the two apart.

Preprocessing is the checkpoints' own `BitImageProcessor` config: bicubic resize of the short side
to 256, center crop 224 (offsets rounded down, as transformers' numpy crop does), ImageNet mean/std.
"""

from __future__ import annotations

from config.fields import DINOV2_VARIANTS
from config.settings import load_settings

from ..registry import register
from ..specs import IMAGENET_MEAN, IMAGENET_STD, BatchLimits, ModelSpec

# The config.json of each hub checkpoint, written out (the hub is not needed to build the bench
# architecture). image_size 518 is what the position embeddings were trained at (37 x 37 patches);
# at 224 px transformers interpolates them, exactly as for the pretrained checkpoints.
_COMMON_CONFIG = {
    "model_type": "dinov2",
    "patch_size": 14,
    "image_size": 518,
    "mlp_ratio": 4,
    "layerscale_value": 1.0,
    "layer_norm_eps": 1e-6,
    "qkv_bias": True,
    "hidden_act": "gelu",
    "use_swiglu_ffn": False,
}
VARIANTS = {
    # variant: (display name, config, CPU max batch)
    "small": ("DINOv2 ViT-S/14", {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6}, 16),
    "base": ("DINOv2 ViT-B/14", {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}, 8),
    "large": ("DINOv2 ViT-L/14", {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16}, 4),
    "giant": (
        "DINOv2 ViT-g/14",
        {"hidden_size": 1536, "num_hidden_layers": 40, "num_attention_heads": 24, "use_swiglu_ffn": True},
        2,
    ),
}
# initializer_range 0.2 (the checkpoints: 0.02): random weights that small barely respond to the
# image, and parity tests need outputs that do.
TINY_CONFIG = {
    **_COMMON_CONFIG,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "initializer_range": 0.2,
}
DINO_MAX_CONCURRENCY = {"cpu": 32, "cuda": 128}  # the dino runner's, for each of its models
GIANT_TINY_CONFIG = {**TINY_CONFIG, "hidden_size": 48, "use_swiglu_ffn": True}
GIANT_SEED = 1


assert set(VARIANTS) == set(DINOV2_VARIANTS), "config.settings declares the same variants"


def dinov2_variant() -> str:
    return load_settings().dinov2_variant


def _batching(cpu_batch: int) -> dict:
    # On CPU one ViT-B/14 image costs ~0.3-0.6 s; the shedding deadline covers a full queue and
    # stays below the runner's 50 s timeout. On a GPU, batches are large and latency short.
    return {
        "encode_images": {
            "cpu": BatchLimits(max_batch_size=cpu_batch, max_latency_ms=30_000, max_batch_wait_ms=5),
            "cuda": BatchLimits(max_batch_size=64, max_latency_ms=500, max_batch_wait_ms=20),
        }
    }


ANALYZE_TASK = {
    "analyze_task": "embed_dino_v2",
    "analyze_description": "Generates an embedding using the DINOv2 model (visual similarity: composition, color, texture).",
}


def _specs(
    variant: str, key: str = "dinov2", tiny: dict = TINY_CONFIG, seed: int = 0, analyze: dict | None = None
) -> list[ModelSpec]:
    display, sizes, cpu_batch = VARIANTS[variant]
    common = dict(
        **(analyze or {}),
        key=key,
        runner="dino",
        family="dino",
        input_size=224,
        resize_size=256,
        crop_rounding="floor",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation="bicubic",
        resize_mode="shortest",
        batching=_batching(cpu_batch),
        max_concurrency=DINO_MAX_CONCURRENCY,
    )
    arch = f"dinov2-{variant}"
    repo = f"facebook/dinov2-{variant}"
    return [
        ModelSpec(
            profile="default",
            display_name=display,
            arch=arch,
            pretrained=repo,
            weights_source=f"Hugging Face hub: {repo}",
            output_dim=sizes["hidden_size"],
            **common,
        ),
        ModelSpec(
            profile="bench",
            display_name=display,
            arch=arch,
            arch_config={**_COMMON_CONFIG, **sizes},
            seed=seed,
            output_dim=sizes["hidden_size"],
            **common,
        ),
        ModelSpec(
            profile="tiny",
            display_name=display,
            arch="dinov2-tiny",
            arch_config=tiny,
            seed=seed,
            output_dim=tiny["hidden_size"],
            **common,
        ),
    ]


_GIANT = _specs("giant", "dinov2_giant", GIANT_TINY_CONFIG, GIANT_SEED)
for _spec in [*_specs(dinov2_variant(), analyze=ANALYZE_TASK), *_GIANT]:
    register(_spec)
