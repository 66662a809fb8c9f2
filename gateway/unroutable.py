"""An ASGI middleware answering, in the gateway's JSON shape, the paths no route can match.

A URL path with a control character (a decoded %0A in an item key of GET /image/{key}/similar)
matches no route: Starlette's routes and mounts match `.*`, which stops at a newline, so
BentoML's own plain-text 404 would answer, outside the documented answers. Such a path gets a
JSON 404 `not_found` here, before routing.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send


def has_control_character(path: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in path)


class UnroutablePathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not has_control_character(scope["path"]):
            await self.app(scope, receive, send)
            return
        detail = f"{scope['method']} {scope['path']!r}: no route takes a path with control characters; see /docs"
        body = json.dumps({"error": "not_found", "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": body})
