"""The typed client layer over the runners: one method per runner API.

Every call to a runner goes through here, so a runner's failures are translated into our
errors in one place (`call_runner`): overload and restarts -> RunnerUnavailable (503), its
timeout -> RunnerTimeout (504), a refusal of the input -> ClientError (4xx), a model this
server does not serve -> ModelNotServed (404 naming the model and how to serve it). The
index runner answers refusals as `{"error", "detail", "status"}`; they become ClientErrors
here too, so callers only ever see typed results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import numpy as np

from intake.errors import ClientError
from models.selection import HOW_TO_CHOOSE

from .errors import RunnerTimeout, RunnerUnavailable

RUNNER_INFO_TIMEOUT_S = 5.0
# the dino runner's API per model key
DINO_APIS = {"dinov2": "encode_dinov2", "dinov3": "encode_dinov3", "dinov2_giant": "encode_dinov2_giant"}


class ModelNotServed(ClientError):
    status = 404
    code = "model_not_served"

    def __init__(self, model: str, what: str = "this request") -> None:
        super().__init__(f"{what} needs the {model} model, which this server does not serve; serve it with {HOW_TO_CHOOSE}")
        self.model = model


async def call_runner(runner: str, coro: Awaitable[Any]) -> Any:
    """Await a runner call, translating overload, timeouts and connection failures."""
    import aiohttp
    from bentoml.exceptions import BentoMLException

    try:
        return await coro
    except BentoMLException as exc:
        status = int(exc.error_code)
        if status in (429, 503):
            raise RunnerUnavailable(runner, "overloaded, retry shortly") from exc
        if status == 504:
            raise RunnerTimeout(runner, "it did not answer within its timeout") from exc
        if 400 <= status < 500:
            raise ClientError(f"the {runner} model refused the input: {exc}", status=status) from exc
        raise  # a fault of the runner itself: logged in full by BentoML
    except (TimeoutError, asyncio.TimeoutError) as exc:  # the client's timeout (the runner's traffic timeout)
        raise RunnerTimeout(runner, "it did not answer within its timeout") from exc
    except (aiohttp.ClientConnectionError, ConnectionError) as exc:
        raise RunnerUnavailable(runner, f"connection failed ({type(exc).__name__})") from exc


def _refusal(answer: Any) -> Any:
    """The index runner's typed refusal (`SearchError.to_json`) as a ClientError."""
    if isinstance(answer, dict) and "error" in answer and "status" in answer:
        raise ClientError(answer["detail"], status=int(answer["status"]), code=answer["error"])
    return answer


class IndexClient:
    """The index runner's APIs (runners/index.py), each answering its dict or raising."""

    def __init__(self, proxy: Any) -> None:
        self._proxy = proxy

    async def _call(self, coro: Awaitable[Any]) -> dict:
        return _refusal(await call_runner("index", coro))

    async def upsert(self, **kwargs: Any) -> dict:
        return await self._call(self._proxy.to_async.upsert(**kwargs))

    async def delete(self, index: str, keys: list[str]) -> dict:
        return await self._call(self._proxy.to_async.delete(index=index, keys=keys))

    async def get_items(self, index: str, keys: list[str], with_vectors: bool = False) -> dict:
        return await self._call(self._proxy.to_async.get_items(index=index, keys=keys, with_vectors=with_vectors))

    async def search(self, **kwargs: Any) -> dict:
        return await self._call(self._proxy.to_async.search(**kwargs))

    async def similar(self, **kwargs: Any) -> dict:
        return await self._call(self._proxy.to_async.similar(**kwargs))

    async def drop_index(self, index: str) -> dict:
        return await self._call(self._proxy.to_async.drop_index(index=index))

    async def duplicates(self, **kwargs: Any) -> dict:
        return await self._call(self._proxy.to_async.duplicates(**kwargs))

    async def browse(self, **kwargs: Any) -> dict:
        return await self._call(self._proxy.to_async.browse(**kwargs))

    async def set_rating(self, index: str, keys: list[str], rating: int) -> dict:
        return await self._call(self._proxy.to_async.set_rating(index=index, keys=keys, rating=rating))

    async def tag_items(self, **kwargs: Any) -> dict:
        return await self._call(self._proxy.to_async.tag_items(**kwargs))

    async def tags(self, index: str) -> dict:
        return await self._call(self._proxy.to_async.tags(index=index))

    async def thumbnail(self, index: str, key: str) -> dict:
        return await self._call(self._proxy.to_async.thumbnail(index=index, key=key))

    async def stats(self, index: str) -> dict:
        return await self._call(self._proxy.to_async.stats(index=index))

    async def check(self, index: str, sample: int) -> dict:
        return await self._call(self._proxy.to_async.check(index=index, sample=sample))


class RunnerClient:
    """The gateway's runners: `proxies` maps runner name -> its `bentoml.depends` proxy (only
    the runners this server starts), `served` lists the model keys it serves."""

    def __init__(self, proxies: Mapping[str, Any], served: Sequence[str]) -> None:
        self.proxies = dict(proxies)
        self.served = tuple(served)
        self.index = IndexClient(self.proxies.get("index"))
        self._info: dict[str, dict[str, Any]] = {}

    def serves(self, model: str) -> bool:
        return model in self.served

    def require(self, model: str, what: str = "this request") -> None:
        if not self.serves(model):
            raise ModelNotServed(model, what)

    def _proxy(self, runner: str, model: str) -> Any:
        self.require(model)
        return self.proxies[runner]

    async def clip_images(self, batch: np.ndarray) -> np.ndarray:
        return await call_runner("clip", self._proxy("clip", "clip").to_async.encode_images(batch))

    async def clip_texts(self, texts: list[str]) -> np.ndarray:
        return await call_runner("clip", self._proxy("clip", "clip").to_async.encode_texts(texts))

    async def dino(self, model: str, batch: np.ndarray) -> np.ndarray:
        """DINOv2 (`dinov2`, `dinov2_giant`) or DINOv3 (`dinov3`) vectors of a uint8 batch."""
        api = getattr(self._proxy("dino", model).to_async, DINO_APIS[model])
        return await call_runner(model, api(batch))

    async def internvit(self, batch: np.ndarray) -> np.ndarray:
        return await call_runner("internvit", self._proxy("internvit", "internvit").to_async.encode_images(batch))

    async def detect_persons(self, canvases: np.ndarray) -> np.ndarray:
        return await call_runner("person", self._proxy("person", "person").to_async.detect(canvases))

    async def detect_faces(self, canvases: np.ndarray) -> np.ndarray:
        return await call_runner("face", self._proxy("face", "face").to_async.detect(canvases))

    async def caption(self, pixels: np.ndarray, max_length: int) -> str:
        """One caption of one uint8 (384, 384, 3) image; batched with other requests' calls."""
        from runners.caption import CaptionRequest

        proxy = self._proxy("caption", "caption")
        request = CaptionRequest(pixels=pixels, max_length=max_length)
        return (await call_runner("caption", proxy.to_async.caption([request])))[0]

    async def info(self, runner: str) -> dict[str, Any]:
        """A runner's self-description (its `info` API), within RUNNER_INFO_TIMEOUT_S."""
        return await call_runner(runner, asyncio.wait_for(self.proxies[runner].to_async.info(), RUNNER_INFO_TIMEOUT_S))

    async def cached_info(self, runner: str) -> dict[str, Any]:
        """`info`, asked once (what is loaded does not change while the runner lives)."""
        if runner not in self._info:
            self._info[runner] = await self.info(runner)
        return self._info[runner]
