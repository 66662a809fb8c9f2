"""The OpenAPI document served at /docs.json: BentoML's, completed with our error answers.

BentoML declares 400/404/500 with `detail` as a string; its own validation errors carry a
list there, and the statuses this gateway returns on purpose (401, 409, 413, 415, 429, 503,
504) are missing. Every operation gets them here, all with one `ErrorResponse` schema (and
`Retry-After` declared on 429/503/504), so clients and fuzzers (schemathesis runs in CI) can
rely on the document.
"""

from __future__ import annotations

import copy
from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorResponse",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "machine-readable code, or a summary for schema violations"},
        "detail": {
            "description": "what was wrong: a message, or the list of schema violations",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        },
    },
}
ERROR_STATUSES = {
    "400": "Bad input: a schema violation or an input the server refuses (see `error`)",
    "401": "An API key is required (when the server is configured with IMAGE_EMBED_API_KEYS)",
    "404": "Not found",
    "409": "The index holds vectors of another model (search APIs)",
    "413": "The image or the request body is too large",
    "415": "The upload is not an allowed image format",
    "429": "`overloaded`: more requests in flight than IMAGE_EMBED_MAX_IN_FLIGHT; retry after `Retry-After` seconds",
    "500": "Internal error",
    "503": "A model is overloaded or restarting, or the search database is unreachable; retry after `Retry-After` seconds",
    "504": "A model did not answer within its timeout",
    "507": "`insufficient_storage`: the filesystem holding the index is full; nothing was written (free space, send it again)",
}
# Refusals a client should retry carry Retry-After (gateway/admission.py, gateway/errors.py).
RETRY_STATUSES = frozenset({"429", "503", "504"})
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}},
}
# The OpenAI-compatible routes (gateway/openai_embeddings.py) answer OpenAI's error shape;
# refusals made before them (401, 413, 429: middlewares) keep ours.
OPENAI_PREFIX = "/v1/"
OPENAI_ERROR_REF = {"$ref": "#/components/schemas/OpenAIErrorResponse"}
OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "title": "OpenAIErrorResponse",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "description": "invalid_request_error, or server_error for 5xx"},
                "param": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "the request field concerned"},
                "code": {"type": "string", "description": "the machine-readable code, as `error` elsewhere"},
            },
        }
    },
}
_METHODS = ("get", "post", "put", "delete", "patch")
_OPEN_PATHS = {"/livez", "/readyz", "/healthz", "/metrics"}


def api_routes(service) -> dict[str, dict[str, Any]]:
    """The path items of the service's own (POST) APIs, as BentoML writes them."""
    from _bentoml_sdk.service.openapi import _get_api_routes
    from bentoml._internal.utils.cattr import bentoml_cattr

    return {path: bentoml_cattr.unstructure(item) for path, item in _get_api_routes(service).items()}


def complete_spec(spec: dict[str, Any], routes: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """`spec` with every error answer declared. `routes` (api_routes): BentoML merges the
    mounted app's paths last, so a GET route on an API's path (GET /browse beside
    POST /browse) would hide the API's POST operation; it is put back."""
    doc = copy.deepcopy(spec)
    for path, item in (routes or {}).items():
        doc.setdefault("paths", {}).setdefault(path, {})
        for method, operation in item.items():
            doc["paths"][path].setdefault(method, operation)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorResponse"] = ERROR_SCHEMA
    schemas["OpenAIErrorResponse"] = OPENAI_ERROR_SCHEMA
    for path, item in doc.get("paths", {}).items():
        if path in _OPEN_PATHS:
            continue
        error = {"anyOf": [OPENAI_ERROR_REF, ERROR_REF]} if path.startswith(OPENAI_PREFIX) else ERROR_REF
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            _restore_nullable(operation, schemas)
            for status, description in ERROR_STATUSES.items():
                responses.pop(int(status), None)  # BentoML keys some by int: one key per status
                responses[status] = {
                    "description": description,
                    "content": {"application/json": {"schema": error}},
                }
                if status in RETRY_STATUSES:
                    responses[status]["headers"] = RETRY_AFTER_HEADER
    return doc


def _restore_nullable(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """BentoML writes an API's request and answer fields inline, keeping only the first choice
    of each `anyOf`: an optional field (`float | None`: "min_cosine" of /verify_index, "filter"
    of /search_text) would be declared a plain number or object. The components (the API's
    `<name>__Input`, the answer's by its title) still have the `anyOf`; a field that allows
    null there is marked `nullable` (OpenAPI 3.0) inline."""
    bodies = [(m, f"{operation.get('x-bentoml-name')}__Input") for m in _media(operation.get("requestBody", {}))]
    for status in (200, "200"):
        bodies += [(m, m.get("schema", {}).get("title", "")) for m in _media(operation.get("responses", {}).get(status, {}))]
    for media, component_name in bodies:
        component = schemas.get(component_name, {}).get("properties", {})
        for name, field in media.get("schema", {}).get("properties", {}).items():
            choices = component.get(name, {}).get("anyOf", ())
            if {"type": "null"} in choices and "anyOf" not in field:
                field["nullable"] = True


def _media(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body.get("content", {}).values())
