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
}
# Refusals a client should retry carry Retry-After (gateway/admission.py, gateway/errors.py).
RETRY_STATUSES = frozenset({"429", "503", "504"})
RETRY_AFTER_HEADER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}},
}
_METHODS = ("get", "post", "put", "delete", "patch")
_OPEN_PATHS = {"/livez", "/readyz", "/healthz", "/metrics"}


def complete_spec(spec: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(spec)
    doc.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = ERROR_SCHEMA
    for path, item in doc.get("paths", {}).items():
        if path in _OPEN_PATHS:
            continue
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses[status] = {
                    "description": description,
                    "content": {"application/json": {"schema": ERROR_REF}},
                }
                if status in RETRY_STATUSES:
                    responses[status]["headers"] = RETRY_AFTER_HEADER
    return doc
