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
from models.families import api_for, embedding_keys, embeds_texts
from models.registry import get_spec
from models.selection import HOW_TO_CHOOSE
from models.specs import ModelSpec

from .errors import RunnerTimeout, RunnerUnavailable

RUNNER_INFO_TIMEOUT_S = 5.0


class ModelNotServed(ClientError):
    status = 404
    code = "model_not_served"

    def __init__(self, model: str, what: str = "this request", served: Sequence[str] = ()) -> None:
        among = f" (it serves {', '.join(served)})" if served else ""
        super().__init__(
            f"{what} needs the {model} model, which this server does not serve{among}; serve it with {HOW_TO_CHOOSE}"
        )
        self.model = model


class ImagesOnly(ClientError):
    """Text sent to a model without a text tower (DINOv2, DINOv3, InternViT)."""

    code = "model_embeds_images_only"

    def __init__(self, model: str, text_models: Sequence[str]) -> None:
        others = f"; models that embed texts here: {', '.join(text_models)}" if text_models else ""
        super().__init__(f"the {model} model embeds images only, not texts{others}")


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

    async def binding(self, index: str) -> dict:
        return await self._call(self._proxy.to_async.binding(index=index))

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
    the runners this server starts), `served` lists the model keys it serves. Which runner
    API a call goes to comes from the registry (the spec's runner, its family's APIs), so a
    new model needs nothing here."""

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

    def embedding_models(self, texts: bool = False) -> list[str]:
        """The served models that embed images (and, with `texts`, texts too), registry order."""
        return [key for key in embedding_keys(texts) if key in self.served]

    def embedding_spec(self, model: str, texts: bool = False, what: str = "this request") -> ModelSpec:
        """The spec of a served embedding model; 404 model_not_served naming the served ones,
        or 400 when `texts` and the model embeds images only."""
        if model not in self.embedding_models():
            raise ModelNotServed(model, what, self.embedding_models())
        spec = get_spec(model)
        if texts and not embeds_texts(spec):
            raise ImagesOnly(model, self.embedding_models(texts=True))
        return spec

    async def call(self, model: str, method: str, batch: Any) -> Any:
        """`model`'s runner API that calls its model method `method`, on `batch`."""
        self.require(model)
        spec = get_spec(model)
        api = api_for(spec, method)
        if api is None:
            raise ValueError(f"the {model} model has no runner API calling {method!r}")
        return await call_runner(model, getattr(self.proxies[spec.runner].to_async, api.api_name(spec))(batch))

    async def embed_images(self, model: str, batch: np.ndarray) -> np.ndarray:
        """float32 (n, d) vectors of a uint8 batch prepared for `model` (models.preprocess)."""
        return await self.call(model, "encode_images", batch)

    async def embed_texts(self, model: str, texts: list[str]) -> np.ndarray:
        """float32 (n, d) vectors of texts, in `model`'s image space."""
        self.embedding_spec(model, texts=True)
        return await self.call(model, "encode_texts", texts)

    async def detect(self, model: str, canvases: np.ndarray) -> np.ndarray:
        """Boxes (n, 32, 5) of a detector (`person`, `face`) on letterboxed canvases."""
        return await self.call(model, "detect", canvases)

    async def caption(self, pixels: np.ndarray, max_length: int) -> str:
        """One caption of one uint8 (384, 384, 3) image; batched with other requests' calls."""
        from runners.io import CaptionRequest

        return (await self.call("caption", "caption", [CaptionRequest(pixels=pixels, max_length=max_length)]))[0]

    async def info(self, runner: str) -> dict[str, Any]:
        """A runner's self-description (its `info` API), within RUNNER_INFO_TIMEOUT_S."""
        return await call_runner(runner, asyncio.wait_for(self.proxies[runner].to_async.info(), RUNNER_INFO_TIMEOUT_S))

    async def cached_info(self, runner: str) -> dict[str, Any]:
        """`info`, asked once (what is loaded does not change while the runner lives)."""
        if runner not in self._info:
            self._info[runner] = await self.info(runner)
        return self._info[runner]
