"""Caption runner: BLIP captions, batched across requests, each with its own max_length."""

from __future__ import annotations

from typing import Annotated

import bentoml
import numpy as np
from bentoml.validators import TensorSchema
from pydantic import BaseModel, Field

from models import get_spec
from models.caption import MAX_CAPTION_LENGTH
from runners.common import batch_limits, model_info, runner_config
from runners.shutdown import OutliveGateway
from runners.metrics import timed_batch

SPEC = get_spec("caption")
_CAPTION = batch_limits(SPEC, "caption")


class CaptionRequest(BaseModel):
    """One image to caption. A batchable API takes one argument, so the per-request
    max_length travels with its pixels."""

    pixels: Annotated[np.ndarray, TensorSchema("numpy-array", "uint8", None)] = Field(
        description="uint8 (384, 384, 3), resized by the gateway"
    )
    max_length: int = Field(ge=1, le=MAX_CAPTION_LENGTH, description="most tokens to generate, BOS included")


@bentoml.service(**runner_config(SPEC))
class CaptionRunner(OutliveGateway):
    # Declared so `bentoml build` packs these weights into the Bento.
    model_ref = bentoml.models.BentoModel(SPEC.store_tag)

    def __init__(self) -> None:
        from models.caption import Captioner
        from models.device import select_device
        from models.store import model_dir

        self.device = select_device()
        self.model = Captioner(SPEC, model_dir(SPEC), self.device)
        self.model.caption(np.zeros((1, SPEC.input_size, SPEC.input_size, 3), dtype=np.uint8), [5])  # warm-up

    @bentoml.api(batchable=True, max_batch_size=_CAPTION.max_batch_size, max_latency_ms=_CAPTION.max_latency_ms)
    @timed_batch("caption", "caption")
    def caption(self, requests: list[CaptionRequest]) -> list[str]:
        """One caption per request, in order: the batch is generated once to the largest
        max_length and each caption is cut to its own (greedy decoding makes that exact)."""
        shape = (SPEC.input_size, SPEC.input_size, 3)
        for r in requests:
            if r.pixels.shape != shape:
                raise bentoml.exceptions.InvalidArgument(f"pixels must be {shape}, got {r.pixels.shape}")
        batch = np.stack([r.pixels for r in requests]) if requests else np.zeros((0, *shape), dtype=np.uint8)
        return self.model.caption(batch, [r.max_length for r in requests])

    @bentoml.api
    def info(self) -> dict:
        """What is loaded, for /health."""
        return model_info(
            SPEC,
            self.device,
            {"caption": _CAPTION},
            input_size=SPEC.input_size,
            max_caption_length=MAX_CAPTION_LENGTH,
        )
