"""Which APIs a server with a subset of the models offers.

An API declares the models it cannot work without with `@requires("clip")`, or the models
one of which it needs with `@requires_one_of(...)` (an API that takes `model`), directly under
`@bentoml.api`; `prune_unserved_apis` takes the APIs whose models are not served out of the
service, so they are neither routed nor in the OpenAPI schema, and returns their routes: the
gateway answers those with 404 `model_not_served`, naming the model (gateway/web.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__image_embed_requires__"
ANY_ATTRIBUTE = "__image_embed_requires_one_of__"


def requires(*models: str) -> Callable[[F], F]:
    def mark(func: F) -> F:
        setattr(func, ATTRIBUTE, tuple(models))
        return func

    return mark


def requires_one_of(models: Sequence[str]) -> Callable[[F], F]:
    def mark(func: F) -> F:
        setattr(func, ANY_ATTRIBUTE, tuple(models))
        return func

    return mark


def required_models(api: Any) -> tuple[str, ...]:
    """The models an API (a BentoML APIMethod) requires."""
    return getattr(api.func, ATTRIBUTE, ())


def missing_model(api: Any, served: Sequence[str]) -> str | None:
    """The first model that keeps `api` from working with the `served` models, or None."""
    missing = [m for m in required_models(api) if m not in served]
    alternatives = getattr(api.func, ANY_ATTRIBUTE, ())
    if not missing and alternatives and not set(alternatives) & set(served):
        missing = list(alternatives)
    return missing[0] if missing else None


def prune_unserved_apis(service: Any, served: Sequence[str]) -> dict[str, str]:
    """Remove from `service.apis` each API that needs a model not in `served`; returns
    {route: the first missing model}."""
    left_out: dict[str, str] = {}
    for name, api in list(service.apis.items()):
        missing = missing_model(api, served)
        if missing is not None:
            left_out[api.route] = missing
            del service.apis[name]
    return left_out


def answer_not_served(app: Any, left_out: dict[str, str], served: Sequence[str] = ()) -> None:
    """Route each left-out API's path on `app` (the gateway's FastAPI app, mounted passively
    beside the APIs: it only sees paths it has a route for) to a 404 naming the model."""
    from starlette.responses import JSONResponse

    from .runner_client import ModelNotServed

    def handler(body: dict[str, str]) -> Callable[[], Any]:
        async def not_served() -> JSONResponse:
            return JSONResponse(body, status_code=404)

        return not_served

    for route, model in left_out.items():
        body = ModelNotServed(model, route, served).to_json()
        app.add_api_route(route, handler(body), methods=["GET", "POST"], include_in_schema=False)
