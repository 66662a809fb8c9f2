"""The model calls of the analyze API, through the gateway's runner dependencies.

Each call goes to a runner's batchable API with a batch of one, so the calls of concurrent
requests (and of one request's concurrent tasks) are batched together by BentoML.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.registry import UnknownModelError, get_spec
from models.specs import ModelSpec

from ..errors import RunnerTimeout, call_runner
from .schemas import TaskFailed

# model key -> (attribute of the runner dependency on the gateway, its batchable API)
EMBEDDERS = {
    "clip": ("clip", "encode_images"),
    "dinov2": ("dino", "encode_dinov2"),
    "dinov3": ("dino", "encode_dinov3"),
}


class ModelNotDeployed(TaskFailed):
    pass


async def _call(model_key: str, coro: Any) -> Any:
    """`call_runner`, plus: any other runner failure (a 504 timeout, a 500) fails the task with
    a message naming the model, instead of surfacing as an internal error."""
    from bentoml.exceptions import BentoMLException

    try:
        return await call_runner(model_key, coro)
    except RunnerTimeout as exc:  # the runner's 504, or the dependency client's own timeout
        raise TaskFailed(f"the {model_key} model timed out; retry later") from exc
    except BentoMLException as exc:
        status = int(exc.error_code)
        what = "timed out" if status == 504 else f"failed (HTTP {status})"
        raise TaskFailed(f"the {model_key} model {what}; retry later") from exc


class RunnerBackends:
    def __init__(self, service: Any) -> None:
        self.service = service

    def spec(self, model_key: str) -> ModelSpec:
        try:
            return get_spec(model_key)
        except UnknownModelError:
            raise ModelNotDeployed(f"the {model_key} model is not part of this server") from None

    def _runner(self, attribute: str, model_key: str) -> Any:
        runner = getattr(self.service, attribute, None)
        if runner is None:
            raise ModelNotDeployed(f"the {model_key} model is not deployed on this server")
        return runner

    async def detect_persons(self, canvases: np.ndarray) -> np.ndarray:
        return await _call("person", self._runner("person", "person").to_async.detect(canvases))

    async def detect_faces(self, canvases: np.ndarray) -> np.ndarray:
        return await _call("face", self._runner("face", "face").to_async.detect(canvases))

    async def embed(self, model_key: str, pixels: np.ndarray) -> np.ndarray:
        attribute, api = EMBEDDERS[model_key]
        runner = self._runner(attribute, model_key)
        return await _call(model_key, getattr(runner.to_async, api)(pixels))

    async def caption(self, pixels: np.ndarray, max_length: int) -> str:
        from runners.caption import CaptionRequest

        runner = self._runner("caption", "caption")
        request = CaptionRequest(pixels=pixels[0], max_length=max_length)
        return (await _call("caption", runner.to_async.caption([request])))[0]
