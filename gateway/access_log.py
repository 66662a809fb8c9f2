"""One structured (JSON) access-log line per request, with its duration.

    IMAGE_EMBED_ACCESS_LOG = json (default) | off

Each line: ts, event, request_id, method, path, status, duration_ms, bytes_in, bytes_out,
client, pid. Never logged: query strings (search texts), headers (API keys), bodies (images).
The request id is taken from a well-formed `X-Request-ID` header or generated, and returned
in the response's `X-Request-ID` so a client can quote it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from config.settings import Settings, load_settings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOGGER_NAME = "image_embed.access"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
QUIET_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


class JSONLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record.msg, separators=(",", ":"), ensure_ascii=False)


def access_logger() -> logging.Logger:
    """The access logger: JSON lines on stdout, independent of BentoML's log format."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JSONLineFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def access_log_enabled(settings: Settings | None = None) -> bool:
    return (settings or load_settings()).access_log == "json"


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
    return uuid.uuid4().hex


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.logger = logger or access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        counts = {"in": 0, "out": 0, "status": 500}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counts["in"] += len(message.get("body", b""))
            return message

        async def tagging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body":
                counts["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, tagging_send)
        except asyncio.CancelledError:
            counts["status"] = 504  # BentoML's timeout middleware cancelled the request
            raise
        finally:
            if scope["path"] not in QUIET_PATHS or counts["status"] >= 400:
                client = scope.get("client")
                self.logger.info(
                    {
                        "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                        "event": "access",
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": counts["status"],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                        "bytes_in": counts["in"],
                        "bytes_out": counts["out"],
                        "client": client[0] if client else None,
                        "pid": os.getpid(),
                    }
                )
