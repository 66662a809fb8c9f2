"""Plain HTTP routes mounted beside the BentoML APIs: GET /, /health, /available_operations/,
/docs, seed 003's GET aliases (gateway/compat.py), the OpenAI-compatible /v1/embeddings and
/v1/models (gateway/openai_embeddings.py, in OpenAI's own error shape), and the JSON 404s.

BentoML APIs are POST-only; these GET routes are part of the seeds' contracts (health checks
and service info) and the human-facing docs page. Every refusal here has the gateway's shape
`{"error", "detail"}`: a bad query parameter is a 400 `invalid_request` (FastAPI would answer
its own 422), and the route of an API whose model this server does not serve a 404
`model_not_served` naming the model (gateway/served.py).
"""

from __future__ import annotations

from pathlib import Path

import bentoml
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, JSONResponse

from .compat import search_aliases
from .health import service_info
from .openai_embeddings import openai_routes
from .thumbnails import thumbnail_routes
from .ui import ui_routes

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
async def root(svc=Depends(bentoml.get_current_service)) -> JSONResponse:
    return JSONResponse(service_info(list(svc.api_names()), list(svc.runners.served)))


@web_app.get("/health", summary="Health: status, model loaded, model name, device, embedding size")
async def health(svc=Depends(bentoml.get_current_service)) -> JSONResponse:
    status, body = await svc.health.report()
    return JSONResponse(body, status_code=status)


@web_app.get("/available_operations/", summary="The analyze API's operations: description, allowed and default targets")
@web_app.get("/available_operations", include_in_schema=False)
async def operations(svc=Depends(bentoml.get_current_service)) -> JSONResponse:
    return JSONResponse(svc.routes.analyze.operations().model_dump())


@web_app.get("/docs.json", include_in_schema=False)
async def openapi(svc=Depends(bentoml.get_current_service)) -> JSONResponse:
    """The OpenAPI document (BentoML's, with every error answer declared)."""
    return JSONResponse(svc.openapi_document())


@web_app.get("/docs", include_in_schema=False)
async def docs() -> FileResponse:
    """Swagger UI over /docs.json (BentoML's page; its own home at / is our service info)."""
    import _bentoml_impl.server as bentoml_server

    return FileResponse(Path(bentoml_server.__file__).parent / "main-openapi.html")
