"""DINOv3 ViT-L/16 (transformers `DINOv3ViTModel`): the CLS token after the final layer norm
(`pooler_output`), L2-normalized.

Preprocessing follows the checkpoint's `DINOv3ViTImageProcessor` config: resize the whole image
to 224 x 224 (bilinear, aspect ratio not kept, no crop), ImageNet mean/std. That processor
resizes a float tensor with torchvision's antialiased bilinear filter; the gateway resizes the
uint8 image with PIL's (the same filter family, rounded to uint8), so the two agree closely but
not bit for bit (docs/models.md, "DINOv2 and DINOv3").
"""

from __future__ import annotations

from ..registry import register
from ..specs import BatchLimits, ModelSpec
from ..specs import IMAGENET_MEAN, IMAGENET_STD
from .dinov2 import DINO_MAX_CONCURRENCY

REPO = "facebook/dinov3-vitl16-pretrain-lvd1689m"

# config.json of the hub checkpoint, written out so the bench profile needs no network.
VITL16_CONFIG = {
    "model_type": "dinov3_vit",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "patch_size": 16,
    "image_size": 224,
    "num_register_tokens": 4,
    "layerscale_value": 1.0,
    "layer_norm_eps": 1e-5,
    "hidden_act": "gelu",
    "use_gated_mlp": False,
    "mlp_bias": True,
    "query_bias": True,
    "key_bias": False,
    "value_bias": True,
    "proj_bias": True,
    "rope_theta": 100.0,
    "pos_embed_rescale": 2.0,
}
TINY_CONFIG = {
    **VITL16_CONFIG,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "initializer_range": 0.2,  # the checkpoint's 0.02 gives random outputs that barely depend on the image
}

# One ViT-L/16 image costs ~1-2 s on CPU: small batches, a deadline below the runner's timeout.
BATCHING = {
    "encode_images": {
        "cpu": BatchLimits(max_batch_size=4, max_latency_ms=40_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=64, max_latency_ms=500, max_batch_wait_ms=20),
    }
}

_COMMON = dict(
    key="dinov3",
    runner="dino",
    family="dino",
    display_name="DINOv3 ViT-L/16",
    input_size=224,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    interpolation="bilinear",
    resize_mode="squash",
    analyze_task="embed_dino_v3",
    analyze_description="Generates an embedding using the DINOv3 model.",
    batching=BATCHING,
    max_concurrency=DINO_MAX_CONCURRENCY,
)

register(
    ModelSpec(
        profile="default",
        arch="dinov3-vitl16",
        pretrained=REPO,
        weights_source=f"Hugging Face hub: {REPO} (gated: accept the license on the hub, set HF_TOKEN)",
        gated=True,
        output_dim=1024,
        **_COMMON,
    )
)
register(ModelSpec(profile="bench", arch="dinov3-vitl16", arch_config=VITL16_CONFIG, seed=0, output_dim=1024, **_COMMON))
register(ModelSpec(profile="tiny", arch="dinov3-tiny", arch_config=TINY_CONFIG, seed=0, output_dim=32, **_COMMON))
