"""Face runner: batched MTCNN face detection on letterboxed images (real weights, every profile)."""

from __future__ import annotations

import bentoml
import numpy as np

from models import get_spec
from models.detection import MAX_DETECTIONS
from runners.common import batch_limits, model_info, runner_config
from runners.shutdown import OutliveGateway
from runners.metrics import timed_batch

SPEC = get_spec("face")
_DETECT = batch_limits(SPEC, "detect")


@bentoml.service(**runner_config(SPEC))
class FaceRunner(OutliveGateway):
    # Declared so `bentoml build` packs these weights into the Bento.
    model_ref = bentoml.models.BentoModel(SPEC.store_tag)

    def __init__(self) -> None:
        from models.device import select_device
        from models.face import FaceDetector
        from models.store import model_dir

        self.device = select_device()
        self.model = FaceDetector(SPEC, model_dir(SPEC), self.device)
        self.model.detect(np.zeros((1, SPEC.input_size, SPEC.input_size, 3), dtype=np.uint8))  # warm-up

    @bentoml.api(
        batchable=True,
        batch_dim=0,
        max_batch_size=_DETECT.max_batch_size,
        max_latency_ms=_DETECT.max_latency_ms,
    )
    @timed_batch("face", "detect")
    def detect(self, images: np.ndarray) -> np.ndarray:
        """uint8 (n, 640, 640, 3) letterboxed by the gateway -> float32 (n, 32, 5): faces
        `[xmin, ymin, xmax, ymax, probability]` in canvas pixels, best first, zero-padded."""
        return self.model.detect(images)

    @bentoml.api
    def info(self) -> dict:
        """What is loaded, for /health."""
        return model_info(
            SPEC,
            self.device,
            {"detect": _DETECT},
            dtype="float32",
            weights=SPEC.weights_source,
            canvas=SPEC.input_size,
            max_detections=MAX_DETECTIONS,
            settings=self.model.settings,
        )
