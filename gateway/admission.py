"""An ASGI middleware that admits a bounded number of requests and refuses the rest at once.

    IMAGE_EMBED_MAX_IN_FLIGHT   requests the gateway process works on at a time (default 64)

A request beyond the limit is answered 429 with `Retry-After: 1` and the gateway's JSON
error shape `{"error": "overloaded", "detail": ...}` before its body is read: overload is a
fast refusal, never a queue that grows until requests time out. Probes and metrics
(/livez, /readyz, /healthz, /metrics) are never counted nor refused, so an overloaded
server still reports itself alive and can be watched.

It replaces BentoML's own `traffic.max_concurrency` of the gateway (a bare 429 without
Retry-After, answered outside this service's middlewares, so the access log never saw it):
configuration.yaml no longer sets that for the gateway. The count is per gateway worker:
one in configuration.yaml, two in configuration-gpu.yaml (so twice the limit in all).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import RETRY_AFTER_S

EXEMPT_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, not {max_in_flight}")
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.refused = 0
        detail = (
            f"the server is working on {max_in_flight} requests (IMAGE_EMBED_MAX_IN_FLIGHT); "
            f"retry after {RETRY_AFTER_S} s"
        )
        self._body = json.dumps({"error": "overloaded", "detail": detail}).encode()

    async def _refuse(self, send: Send) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self._body)).encode()),
            (b"retry-after", RETRY_AFTER_S.encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        # No await between the check and the increment: the event loop cannot interleave them.
        if self.in_flight >= self.max_in_flight:
            self.refused += 1
            await self._refuse(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:  # errors and cancellations (the timeout middleware) give the slot back too
            self.in_flight -= 1
