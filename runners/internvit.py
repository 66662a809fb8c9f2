"""InternViT runner: mean-pooled patch-token embeddings of whole images and of views.

One batchable API serves both extractors: the gateway sends the simple extractor's images
(timm's eval transform) and the three-level extractor's views (models/views.py) as uint8
(n, 448, 448, 3) batches; adaptive batching merges the views of concurrent requests into
shared forward passes, split at the spec's max_batch_size.
"""

from __future__ import annotations

import bentoml
import numpy as np

from models import get_spec
from runners.common import batch_limits, model_info, runner_config
from runners.shutdown import OutliveGateway
from runners.metrics import timed_batch

SPEC = get_spec("internvit")
_IMAGES = batch_limits(SPEC, "encode_images")
POOLING = "mean of the patch tokens of forward_features (CLS token excluded), L2-normalized"


@bentoml.service(**runner_config(SPEC))
class InternVitRunner(OutliveGateway):
    # Declared so `bentoml build` packs these weights into the Bento.
    model_ref = bentoml.models.BentoModel(SPEC.store_tag)

    def __init__(self) -> None:
        from models.device import select_device
        from models.store import model_dir
        from models.timm_vit import InternVitModel

        self.device = select_device()
        self.model = InternVitModel(SPEC, model_dir(SPEC), self.device)
        self.model.encode_images(np.zeros((1, SPEC.input_size, SPEC.input_size, 3), dtype=np.uint8))

    @bentoml.api(
        batchable=True,
        batch_dim=0,
        max_batch_size=_IMAGES.max_batch_size,
        max_latency_ms=_IMAGES.max_latency_ms,
    )
    @timed_batch("internvit", "encode_images")
    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """uint8 (n, 448, 448, 3) images or views -> float32 (n, d): mean-pooled patch tokens,
        L2-normalized."""
        return self.model.encode_images(images)

    @bentoml.api
    def info(self) -> dict:
        """What is loaded, for /health."""
        return model_info(
            SPEC, self.device, {"encode_images": _IMAGES}, embedding_size=SPEC.output_dim, pooling=POOLING
        )
