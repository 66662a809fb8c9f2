"""How the gateway turns failures into responses.

- ClientError (bad input)            -> its 4xx, `{"error": code, "detail": message}`
- a runner shedding load (503/429)   -> 503 with Retry-After, the same JSON shape
- a runner that cannot be reached    -> 503 with Retry-After
- a runner's own 503 refusal (the search database down) -> 503 with Retry-After, its code
- a runner that does not answer within its traffic timeout -> 504 `model_timeout`
BentoML's own handler would render 4xx bodies as a one-element list and hide 5xx causes,
so API methods are wrapped with `api_errors` and return these responses themselves. The
runners' failures are translated into these errors by gateway/runner_client.py.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.responses import JSONResponse

from errors import ServiceError
from intake.errors import ClientError

logger = logging.getLogger("image_embed.gateway")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
RETRY_AFTER_S = "1"


class RunnerUnavailable(ServiceError):
    """A model runner could not serve the request (overloaded, restarting, down)."""

    status = 503
    code = "model_unavailable"

    def __init__(self, runner: str, detail: str) -> None:
        super().__init__(detail)
        self.runner = runner

    def __str__(self) -> str:
        return f"{self.runner}: {self.detail}"


class RunnerTimeout(RunnerUnavailable):
    """A model runner did not answer within its traffic timeout (configuration.yaml)."""

    status = 504
    code = "model_timeout"


def client_error_response(exc: ClientError) -> JSONResponse:
    # A 503 passed on from a runner (the search database down, an index busy) may succeed later.
    headers = {"Retry-After": RETRY_AFTER_S} if exc.status == 503 else None
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


def unavailable_response(exc: RunnerUnavailable) -> JSONResponse:
    body = {"error": exc.code, "detail": f"the {exc.runner} model is unavailable: {exc.detail}"}
    return JSONResponse(body, status_code=exc.status, headers={"Retry-After": RETRY_AFTER_S})


def api_errors(func: F) -> F:
    """Wrap an async API method so expected failures become clean JSON responses."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await func(*args, **kwargs)
        except ClientError as exc:
            return client_error_response(exc)
        except RunnerUnavailable as exc:
            logger.warning("runner unavailable: %s", exc)
            return unavailable_response(exc)

    return wrapper  # type: ignore[return-value]
