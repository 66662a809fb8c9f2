"""InternViT-300M-448px (timm `vit_intern300m_patch14_448`): mean-pooled patch tokens, L2-normalized.

Preprocessing is timm's eval transform for the checkpoint (`resolve_data_config` +
`create_transform`): bicubic resize of the short side to 448, center crop 448 (crop_pct 1.0,
torchvision rounding), ImageNet mean/std. The three-level views (models/views.py) are resized
to 448 x 448 whole instead, as InternVL does with its tiles.
"""

from __future__ import annotations

from ..registry import register
from ..specs import BatchLimits, ModelSpec
from ..specs import IMAGENET_MEAN, IMAGENET_STD

ARCH = "vit_intern300m_patch14_448"
TAG = "ogvl_dist"  # InternViT-300M-448px, distilled from InternViT-6B by OpenGVLab

# One 448 px view costs ~4 s on a 2-core CPU: a batch of 8 holds one three-level request
# (1 + 1 + 4 views) and the shedding deadline stays below the runner's 50 s timeout.
BATCHING = {
    "encode_images": {
        "cpu": BatchLimits(max_batch_size=8, max_latency_ms=45_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=32, max_latency_ms=1_000, max_batch_wait_ms=20),
    }
}

_COMMON = dict(
    key="internvit",
    runner="internvit",
    family="timm",
    display_name="InternViT-300M-448px",
    arch=ARCH,
    input_size=448,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    interpolation="bicubic",
    resize_mode="shortest",
    batching=BATCHING,
    max_concurrency={"cpu": 16, "cuda": 64},
)

register(
    ModelSpec(
        profile="default",
        pretrained=TAG,
        weights_source=f"timm pretrained tag '{TAG}' (Hugging Face hub: timm/{ARCH}.{TAG})",
        output_dim=1024,
        **_COMMON,
    )
)
register(ModelSpec(profile="bench", seed=0, output_dim=1024, **_COMMON))
# Same timm class and input size, tiny width: keyword arguments of timm.create_model.
register(
    ModelSpec(profile="tiny", arch_config={"embed_dim": 32, "depth": 2, "num_heads": 2}, seed=0, output_dim=32, **_COMMON)
)
