"""An ASGI middleware answering, in the gateway's JSON shape, the requests no route matched.

Starlette and FastAPI (under BentoML) answer a path that matches no route with their own 404
(plain text `Not Found`, or `{"detail": "Not Found"}`), outside the documented answers
(`{error, detail}`). Such a 404 is replaced here by a JSON 404 `not_found`; every other answer,
and the routes' own 404s (`key_not_found`, `index_not_found`...), pass unchanged. A path with
a line break (a decoded %0A in an item key) reaches its route (gateway/patches.py, guard 4),
which answers for the key itself.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _ours(body: bytes) -> bool:
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and "error" in answer


class UnroutablePathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []  # a 404's start and body, until it is known whose it is

        async def checked_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 404:
                held.append(message)
                return
            if not held:
                await send(message)
                return
            held.append(message)
            if message.get("more_body", False):
                return
            body = b"".join(m.get("body", b"") for m in held[1:])
            if _ours(body):
                for m in held:
                    await send(m)
                return
            detail = f"{scope['method']} {scope['path']!r}: no such route; the APIs are listed at /docs"
            ours = json.dumps({"error": "not_found", "detail": detail}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(ours)).encode())]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": ours})

        await self.app(scope, receive, checked_send)
