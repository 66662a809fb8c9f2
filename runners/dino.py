"""DINO runner: DINOv2 and DINOv3 global image embeddings in one process (float32, L2-normalized).

Each image becomes one vector: `pooler_output`, the CLS token of the last hidden state after the
model's final layer norm, L2-normalized. Inputs are the gateway's uint8 batches, made with
`models.preprocess.prepare_images(pil_images, get_spec("dinov2"))` (resp. "dinov3").
"""

from __future__ import annotations

import bentoml
import numpy as np

from models import get_spec
from runners.common import batch_limits, runner_config
from runners.shutdown import OutliveGateway
from runners.metrics import timed_batch

DINOV2 = get_spec("dinov2")
DINOV3 = get_spec("dinov3")
_V2 = batch_limits(DINOV2, "encode_images")
_V3 = batch_limits(DINOV3, "encode_images")


@bentoml.service(**runner_config(DINOV2, name="dino_runner"))
class DinoRunner(OutliveGateway):
    # Declared so `bentoml build` packs both models' weights into the Bento.
    dinov2_ref = bentoml.models.BentoModel(DINOV2.store_tag)
    dinov3_ref = bentoml.models.BentoModel(DINOV3.store_tag)

    def __init__(self) -> None:
        from models.device import select_device
        from models.dino import DinoModel
        from models.store import model_dir

        self.device = select_device()
        self.models = {spec.key: DinoModel(spec, model_dir(spec), self.device) for spec in (DINOV2, DINOV3)}
        for spec in (DINOV2, DINOV3):  # one forward each before /readyz turns green
            self.models[spec.key].encode_images(np.zeros((1, spec.input_size, spec.input_size, 3), dtype=np.uint8))

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=_V2.max_batch_size, max_latency_ms=_V2.max_latency_ms)
    @timed_batch("dino", "encode_dinov2")
    def encode_dinov2(self, images: np.ndarray) -> np.ndarray:
        """uint8 (n, 224, 224, 3) from prepare_images(..., dinov2 spec) -> float32 (n, d):
        the CLS token after the final layer norm (pooler_output), L2-normalized."""
        return self.models["dinov2"].encode_images(images)

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=_V3.max_batch_size, max_latency_ms=_V3.max_latency_ms)
    @timed_batch("dino", "encode_dinov3")
    def encode_dinov3(self, images: np.ndarray) -> np.ndarray:
        """uint8 (n, 224, 224, 3) from prepare_images(..., dinov3 spec) -> float32 (n, d):
        the CLS token after the final layer norm (pooler_output), L2-normalized."""
        return self.models["dinov3"].encode_images(images)

    @bentoml.api
    def info(self) -> dict:
        """What is loaded, for /health: one entry per model."""
        limits = {"dinov2": _V2, "dinov3": _V3}
        return {
            "key": "dino",
            "device": self.device.device,
            "device_name": self.device.name,
            "dtype": self.device.dtype,
            "profile": DINOV2.profile,
            "models": {
                spec.key: {
                    "model": spec.display_name,
                    "arch": spec.arch,
                    "weights": "random (seeded)" if spec.random_weights else spec.pretrained,
                    "store_tag": spec.store_tag,
                    "embedding_size": spec.output_dim,
                    "pooling": "CLS token after the final layer norm (pooler_output), L2-normalized",
                    "batching": {f"encode_{spec.key}": vars(limits[spec.key])},
                }
                for spec in (DINOV2, DINOV3)
            },
        }
