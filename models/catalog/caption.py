"""Image captioning: BLIP base (transformers BlipForConditionalGeneration), greedy decoding."""

from __future__ import annotations

from ..registry import register
from ..specs import OPENAI_MEAN, OPENAI_STD, BatchLimits, ModelSpec


# Generation is one decoder step per token: batches help a lot on a GPU, less on CPU.
BATCHING = {
    "caption": {
        "cpu": BatchLimits(max_batch_size=8, max_latency_ms=40_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=32, max_latency_ms=2_000, max_batch_wait_ms=20),
    },
}

_COMMON = dict(
    key="caption",
    runner="caption",
    family="transformers_blip",
    display_name="BLIP base (image captioning)",
    input_size=384,  # BlipImageProcessor: resize to 384 x 384 (no crop), bicubic, CLIP's mean/std
    mean=OPENAI_MEAN,
    std=OPENAI_STD,
    interpolation="bicubic",
    resize_mode="squash",
    output_dim=None,
    batching=BATCHING,
)

register(
    ModelSpec(
        profile="default",
        arch="blip-base",
        pretrained="Salesforce/blip-image-captioning-base",
        weights_source="Hugging Face hub: Salesforce/blip-image-captioning-base",
        **_COMMON,
    )
)
# Bench: BlipConfig's defaults are BLIP base's architecture; the vocab is synthetic.
register(ModelSpec(profile="bench", arch="blip-base", seed=0, **_COMMON))

TINY_WORDS = (
    "a an the of in on with and at by photo picture image man woman person people child astronaut "
    "suit space flag white red blue green black standing sitting holding wearing looking smiling "
    "outside inside front background sky grass water street room table dog cat car tree building"
).split()

register(
    ModelSpec(
        profile="tiny",
        arch="tiny-blip",
        arch_config={
            "vocab_words": TINY_WORDS,
            "vision_config": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 384,
                "patch_size": 32,
                # BLIP's vision default (1e-10) would make random captions ignore the image
                "initializer_range": 0.1,
            },
            "text_config": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "encoder_hidden_size": 32,
                "max_position_embeddings": 256,
                "initializer_range": 0.1,
            },
        },
        seed=0,
        **_COMMON,
    )
)
