"""Face detection: MTCNN from facenet-pytorch, whose real weights ship inside the package.

Every profile uses the real weights (no download needed), so the tiny profile finds real
faces: tests check it on scikit-image's astronaut photograph.
"""

from __future__ import annotations

from ..registry import register
from ..specs import BatchLimits, ModelSpec

BATCHING = {
    "detect": {
        "cpu": BatchLimits(max_batch_size=8, max_latency_ms=20_000, max_batch_wait_ms=5),
        "cuda": BatchLimits(max_batch_size=32, max_latency_ms=500, max_batch_wait_ms=20),
    },
}

for _profile in ("default", "tiny", "bench"):
    register(
        ModelSpec(
            key="face",
            runner="face",
            profile=_profile,
            family="facenet_mtcnn",
            display_name="MTCNN (facenet-pytorch)",
            arch="mtcnn",
            pretrained="facenet-pytorch",
            weights_bundled=True,
            weights_source="P-, R- and O-net weights bundled in the facenet-pytorch package (no download)",
            # Letterboxed to 640 x 640; MTCNN finds faces down to 20 px on that canvas and
            # normalizes internally ((x - 127.5) / 128, i.e. mean = std = 0.5).
            input_size=640,
            interpolation="bilinear",
            resize_mode="letterbox",
            output_dim=None,
            batching=BATCHING,
        )
    )
