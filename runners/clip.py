"""CLIP runner: batched image and text embeddings (float32, L2-normalized)."""

from __future__ import annotations

import bentoml
import numpy as np

from models import get_spec
from runners.common import batch_limits, model_info, runner_config
from runners.shutdown import OutliveGateway
from runners.metrics import timed_batch

SPEC = get_spec("clip")
_IMAGES = batch_limits(SPEC, "encode_images")
_TEXTS = batch_limits(SPEC, "encode_texts")


@bentoml.service(**runner_config(SPEC))
class ClipRunner(OutliveGateway):
    # Declared so `bentoml build` packs these weights into the Bento.
    model_ref = bentoml.models.BentoModel(SPEC.store_tag)

    def __init__(self) -> None:
        from models.clip import ClipModel
        from models.device import select_device
        from models.store import model_dir

        self.device = select_device()
        self.model = ClipModel(SPEC, model_dir(SPEC), self.device)
        # One forward of each tower before /readyz turns green, so the first user request
        # does not pay for lazy initialization.
        self.model.encode_images(np.zeros((1, SPEC.input_size, SPEC.input_size, 3), dtype=np.uint8))
        self.model.encode_texts(["warm-up"])

    @bentoml.api(
        batchable=True,
        batch_dim=0,
        max_batch_size=_IMAGES.max_batch_size,
        max_latency_ms=_IMAGES.max_latency_ms,
    )
    @timed_batch("clip", "encode_images")
    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """uint8 (n, 224, 224, 3), already resized by the gateway -> float32 (n, 512)."""
        return self.model.encode_images(images)

    @bentoml.api(batchable=True, max_batch_size=_TEXTS.max_batch_size, max_latency_ms=_TEXTS.max_latency_ms)
    @timed_batch("clip", "encode_texts")
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Strings -> float32 (n, 512) in the image embeddings' space."""
        return self.model.encode_texts(texts)

    @bentoml.api
    def info(self) -> dict:
        """What is loaded, for /health."""
        return model_info(
            SPEC, self.device, {"encode_images": _IMAGES, "encode_texts": _TEXTS}, embedding_size=SPEC.output_dim
        )
