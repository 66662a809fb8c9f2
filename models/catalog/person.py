"""Person detection: torchvision Faster R-CNN ResNet50-FPN v2 (COCO), person boxes with scores."""

from __future__ import annotations

from ..registry import register
from ..specs import IMAGENET_MEAN, IMAGENET_STD, BatchLimits, ModelSpec


# One Faster R-CNN v2 forward at 800 x 800 costs seconds on CPU (about 4 s on two idle cores,
# 10-17 s when they are shared) and batching does not make a CPU faster: the smallest batches,
# and a shedding deadline (503) that comes before the runner's 50 s timeout (504).
BATCHING = {
    "detect": {
        "cpu": BatchLimits(max_batch_size=2, max_latency_ms=40_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=16, max_latency_ms=1_000, max_batch_wait_ms=20),
    },
}

_COMMON = dict(
    key="person",
    runner="person",
    family="torchvision_detection",
    display_name="Faster R-CNN ResNet50-FPN v2 (COCO)",
    # The gateway letterboxes every image to 800 x 800 (long side 800, aspect kept): the short
    # side torchvision's transform would resize a square image to, and one shape per batch.
    input_size=800,
    mean=IMAGENET_MEAN,  # applied inside torchvision's GeneralizedRCNNTransform
    std=IMAGENET_STD,
    interpolation="bilinear",
    resize_mode="letterbox",
    output_dim=None,
    batching=BATCHING,
)

register(
    ModelSpec(
        profile="default",
        arch="fasterrcnn_resnet50_fpn_v2",
        pretrained="COCO_V1",
        weights_source="torchvision FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1 (download.pytorch.org)",
        **_COMMON,
    )
)
register(ModelSpec(profile="bench", arch="fasterrcnn_resnet50_fpn_v2", seed=0, **_COMMON))
register(
    ModelSpec(
        profile="tiny",
        arch="tiny-fasterrcnn",
        # torchvision's FasterRCNN around a 3-layer CNN; it resizes the 800 px canvas to 160
        # internally. person_bias: the seeded classifier favours "person" so tests see persons.
        arch_config={
            "backbone_channels": [8, 16, 32],
            "anchor_sizes": [32, 64, 128],
            "min_size": 160,
            "max_size": 160,
            "representation_size": 32,
            "proposals": 64,
            "person_bias": 8.0,
        },
        seed=0,
        **_COMMON,
    )
)
