"""Plain HTTP routes mounted beside the BentoML APIs: GET /, /health, /available_operations/, /docs.

BentoML APIs are POST-only; these GET routes are part of the seeds' contracts (health checks
and service info) and the human-facing docs page.
"""

from __future__ import annotations

from pathlib import Path

import bentoml
from fastapi import Depends, FastAPI
from starlette.responses import FileResponse, JSONResponse, Response

from .errors import api_errors
from .analyze.operations import available_operations
from .health import service_info

web_app = FastAPI(title="image-embed routes", docs_url=None, redoc_url=None, openapi_url=None)


@web_app.get("/", summary="Service information (also a cheap liveness check)")
async def root(svc=Depends(bentoml.get_current_service)) -> JSONResponse:
    return JSONResponse(service_info(list(svc.api_names())))


@web_app.get("/health", summary="Health: status, model loaded, model name, device, embedding size")
async def health(svc=Depends(bentoml.get_current_service)) -> JSONResponse:
    status, body = await svc.health_report()
    return JSONResponse(body, status_code=status)


@web_app.get("/available_operations/", summary="The analyze API's operations: description, allowed and default targets")
@web_app.get("/available_operations", include_in_schema=False)
async def operations() -> JSONResponse:
    return JSONResponse(available_operations().model_dump())


@web_app.get("/docs.json", include_in_schema=False)
async def openapi(svc=Depends(bentoml.get_current_service)) -> JSONResponse:
    """The OpenAPI document (BentoML's, with every error answer declared)."""
    return JSONResponse(svc.openapi_document())


@web_app.get("/docs", include_in_schema=False)
async def docs() -> FileResponse:
    """Swagger UI over /docs.json (BentoML's page; its own home at / is our service info)."""
    import _bentoml_impl.server as bentoml_server

    return FileResponse(Path(bentoml_server.__file__).parent / "main-openapi.html")


# Seed 003's read routes, as thin aliases of the search APIs (same answers, same errors).
# They call the service's plain methods: its @bentoml.api methods would go out over HTTP.
async def _answer(method, *args) -> Response:
    result = await api_errors(method)(*args)
    return result if isinstance(result, Response) else JSONResponse(result.model_dump())


@web_app.get("/search/text", summary="Seed 003: text search (alias of POST /search_text)")
async def search_text_get(q: str, top_k: int = 20, index: str = "default", svc=Depends(bentoml.get_current_service)):
    return await _answer(svc.run_search_text, q, top_k, None, None, index)


@web_app.get("/image/{key:path}/similar", summary="Seed 003: items similar to one (alias of POST /similar)")
async def similar_get(key: str, top_k: int = 20, index: str = "default", svc=Depends(bentoml.get_current_service)):
    return await _answer(svc.run_similar, key, top_k, None, None, index)


@web_app.get("/stats", summary="Seed 003: index statistics (alias of POST /index_stats)")
async def stats_get(index: str = "default", svc=Depends(bentoml.get_current_service)):
    return await _answer(svc.run_index_stats, index)
