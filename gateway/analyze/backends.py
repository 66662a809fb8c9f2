"""The model calls of the analyze API, over the gateway's typed runner client.

Each call goes to a runner's batchable API with a batch of one, so the calls of concurrent
requests (and of one request's concurrent tasks) are batched together by BentoML. A model
this server does not serve, or a runner that times out, fails the task (status "error",
naming the model); the other tasks of the request go on.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import numpy as np

from models.registry import UnknownModelError, get_spec
from models.specs import ModelSpec

from ..errors import RunnerTimeout
from ..runner_client import ModelNotServed, RunnerClient
from .schemas import TaskFailed

T = TypeVar("T")


class ModelNotDeployed(TaskFailed):
    pass


async def _task_call(model_key: str, call: Awaitable[T]) -> T:
    from bentoml.exceptions import BentoMLException

    try:
        return await call
    except ModelNotServed as exc:
        raise ModelNotDeployed(exc.detail.replace("this request", "this task")) from None
    except RunnerTimeout as exc:  # the runner's 504, or the dependency client's own timeout
        raise TaskFailed(f"the {model_key} model timed out; retry later") from exc
    except BentoMLException as exc:  # any other fault of the runner fails the task, named
        raise TaskFailed(f"the {model_key} model failed (HTTP {int(exc.error_code)}); retry later") from exc


class RunnerBackends:
    def __init__(self, runners: RunnerClient) -> None:
        self.runners = runners

    def spec(self, model_key: str) -> ModelSpec:
        try:
            return get_spec(model_key)
        except UnknownModelError:
            raise ModelNotDeployed(f"the {model_key} model is not part of this server") from None

    async def detect_persons(self, canvases: np.ndarray) -> np.ndarray:
        return await _task_call("person", self.runners.detect("person", canvases))

    async def detect_faces(self, canvases: np.ndarray) -> np.ndarray:
        return await _task_call("face", self.runners.detect("face", canvases))

    async def embed(self, model_key: str, pixels: np.ndarray) -> np.ndarray:
        return await _task_call(model_key, self.runners.embed_images(model_key, pixels))

    async def caption(self, pixels: np.ndarray, max_length: int) -> str:
        return await _task_call("caption", self.runners.caption(pixels[0], max_length))
