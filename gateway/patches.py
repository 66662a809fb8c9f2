"""Guards around BentoML behaviour that is unsafe for a public image server.

1. File fields accept uploads only (no server-side fetch).

BentoML's multipart parser treats a *text* value in a file field as a URL and downloads it
on the server (`MultipartSerde.ensure_file`), with no size cap and only a partial address
check. That bypasses the intake's URL rules (allow-list, size cap, timeouts, redirects), so
file fields here accept uploaded files only; URLs go in the explicit `url` fields, which the
intake fetches safely. tests/integration/test_bad_inputs.py proves no fetch happens.

2. A multipart body that cannot be parsed (no boundary, broken framing) makes Starlette raise
`MultiPartException` or its `HTTPException(400)`, which BentoML answers with 500. It is the
client's fault: 400.

3. BentoML logs every schema-violating request, and every body cut off as too large while
it streamed, as an ERROR with a full traceback: log noise, and a way for a client to flood the
logs. Those are client errors (the access log records their 400 or 413); real server faults
keep their tracebacks.

4. BentoML mounts the gateway's own routes (gateway/web.py) with a Starlette Mount, whose
path pattern `.*` stops at a line break: a key with one (keys may hold any character but
NUL) in a path such as POST /rating/{key} never reached its route and got a plain-text 404.
The mount matches across line breaks.

5. The gateway's connections to its runners outlived the runners' keep-alive, so a request
could meet a connection the runner was closing: gateway/runner_connections.py.
"""

from __future__ import annotations

import logging

from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError
from starlette.datastructures import UploadFile


async def _uploads_only(obj: object) -> UploadFile:
    if isinstance(obj, UploadFile):
        return obj
    error = PydanticCustomError(
        "upload_required",
        "file fields take uploaded files only; send an image URL in the `url` (or `urls`) field",
    )
    raise ValidationError.from_exception_data("Input", [InitErrorDetails(type=error, loc=("file",), input="(text)")])


def _schema_error(kind: str, message: str) -> ValidationError:
    error = PydanticCustomError(kind, message)
    return ValidationError.from_exception_data("Input", [InitErrorDetails(type=error, loc=("body",), input="(body)")])


def _parse_or_400(original):
    async def parse_request(self, request, cls):
        from starlette.exceptions import HTTPException
        from starlette.formparsers import MultiPartException

        try:
            return await original(self, request, cls)
        except MultiPartException as exc:
            raise _schema_error("malformed_multipart", f"the multipart body could not be parsed: {exc}") from None
        except HTTPException as exc:  # Starlette's own wrapping of a parse error (400)
            if exc.status_code >= 500:
                raise
            raise _schema_error("malformed_multipart", f"the multipart body could not be parsed: {exc.detail}") from None

    parse_request.__wrapped__ = original
    return parse_request


class _DropClientErrorTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from .body_limit import BodyTooLarge  # an oversized body streamed without a length: the 413 is ours

        exc_type = record.exc_info[0] if record.exc_info else None
        return not (exc_type is not None and issubclass(exc_type, (ValidationError, BodyTooLarge)))


_FILTER = _DropClientErrorTracebacks()
BENTOML_ERROR_LOGGER = "bentoml._internal.server.http_app"


def _across_line_breaks(original):
    def __init__(self, *args, **kwargs):
        import re

        original(self, *args, **kwargs)
        self.path_regex = re.compile(self.path_regex.pattern, re.DOTALL)

    __init__.__wrapped__ = original
    return __init__


def apply_bentoml_patches() -> None:
    """Install the guards (idempotent)."""
    from _bentoml_impl.serde import MultipartSerde
    from _bentoml_impl.server.mount import PassiveMount

    from . import runner_connections

    runner_connections.install()  # 5. (its own module) the runner connections' keep-alive

    if not hasattr(PassiveMount.__init__, "__wrapped__"):
        PassiveMount.__init__ = _across_line_breaks(PassiveMount.__init__)

    logging.getLogger(BENTOML_ERROR_LOGGER).addFilter(_FILTER)
    MultipartSerde.ensure_file = staticmethod(_uploads_only)
    if not hasattr(MultipartSerde.parse_request, "__wrapped__"):
        MultipartSerde.parse_request = _parse_or_400(MultipartSerde.parse_request)
