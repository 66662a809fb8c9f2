"""Plain HTTP routes mounted beside the BentoML APIs: GET /, /health, /available_operations/,
/docs, the old search service's GET routes (gateway/compat.py), the OpenAI-compatible
/v1/embeddings and /v1/models (gateway/openai_embeddings.py, in OpenAI's own error shape),
thumbnails, the web UI, and the JSON 404s.

BentoML APIs are POST-only; these GET routes are part of the old services' contracts (health
checks and service info) and the human-facing docs page. They call the same typed route
objects as the BentoML APIs, which the service binds to this app at start-up (gateway/bound.py).
Every refusal here has the gateway's shape
`{"error", "detail"}`: a bad query parameter is a 400 `invalid_request` (FastAPI would answer
its own 422), and the route of an API whose model this server does not serve a 404
`model_not_served` naming the model (gateway/served.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse

from .analyze.api import AnalyzeRoutes
from .bound import bound
from .compat import search_aliases
from .health import Health, service_info
from .openai_embeddings import openai_routes
from .thumbnails import thumbnail_routes
from .ui import ui_routes

@dataclass(frozen=True)
class ServiceDescription:
    """What GET / and /docs.json answer: the service's APIs, its models, its OpenAPI document."""

    api_names: list[str]
    served: list[str]
    openapi_document: Callable[[], dict[str, Any]]


web_app = FastAPI(title="image-embed routes", docs_url=None, redoc_url=None, openapi_url=None)
web_app.include_router(search_aliases)
web_app.include_router(openai_routes)
web_app.include_router(thumbnail_routes)
web_app.include_router(ui_routes)


@web_app.exception_handler(RequestValidationError)
async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    return JSONResponse({"error": "invalid_request", "detail": problems}, status_code=400)


@web_app.exception_handler(HTTPException)
async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed"}
    detail = f"{request.method} {request.url.path}: {exc.detail}; see /docs"
    body = {"error": codes.get(exc.status_code, "http_error"), "detail": detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)  # a 405 keeps its Allow


@web_app.get("/", summary="Service information (also a cheap liveness check)")
async def root(service: ServiceDescription = bound(ServiceDescription)) -> JSONResponse:
    return JSONResponse(service_info(service.api_names, service.served))


@web_app.get("/health", summary="Health: status, model loaded, model name, device, embedding size")
async def health(checks: Health = bound(Health)) -> JSONResponse:
    status, body = await checks.report()
    return JSONResponse(body, status_code=status)


@web_app.get("/available_operations/", summary="The analyze API's operations: description, allowed and default targets")
@web_app.get("/available_operations", include_in_schema=False)
async def operations(analyze: AnalyzeRoutes = bound(AnalyzeRoutes)) -> JSONResponse:
    return JSONResponse(analyze.operations().model_dump())


@web_app.get("/docs.json", include_in_schema=False)
async def openapi(service: ServiceDescription = bound(ServiceDescription)) -> JSONResponse:
    """The OpenAPI document (BentoML's, with every error answer declared)."""
    return JSONResponse(service.openapi_document())


@web_app.get("/docs", include_in_schema=False)
async def docs() -> FileResponse:
    """Swagger UI over /docs.json (BentoML's page; its own home at / is our service info)."""
    import _bentoml_impl.server as bentoml_server

    return FileResponse(Path(bentoml_server.__file__).parent / "main-openapi.html")
