"""BodyLimitMiddleware: declared and streamed bodies over the limit get 413 before they fill memory."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from gateway.body_limit import BodyLimitMiddleware

LIMIT = 1000


class Echo:
    """A Starlette app that answers with the body it read; counts its calls."""

    def __init__(self, swallow_errors: bool = False) -> None:
        self.calls = 0
        self.swallow_errors = swallow_errors

        async def echo(request: Request):
            self.calls += 1
            try:
                body = await request.body()
            except Exception:
                if self.swallow_errors:
                    return PlainTextResponse("app error", status_code=400)
                raise
            return JSONResponse({"length": len(body), "text": body.decode("latin-1")})

        self.app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])


def post(app, **kwargs) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post("/echo", **kwargs)

    return asyncio.run(go())


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "request_too_large"
    assert "1,000 bytes" in body["detail"] and "IMAGE_EMBED_MAX_BODY_BYTES" in body["detail"]
    assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.parametrize("size", [0, 1, 999, LIMIT])
def test_body_within_the_limit_passes_unchanged(size):
    echo = Echo()
    payload = bytes(i % 251 for i in range(size))
    response = post(BodyLimitMiddleware(echo.app, LIMIT), content=payload)
    assert response.status_code == 200
    assert response.json() == {"length": size, "text": payload.decode("latin-1")}
    assert echo.calls == 1


@pytest.mark.parametrize("size", [LIMIT + 1, 50_000])
def test_declared_length_over_the_limit_is_refused_without_calling_the_app(size):
    echo = Echo()
    response = post(BodyLimitMiddleware(echo.app, LIMIT), content=b"x" * size)
    assert_413(response)
    assert echo.calls == 0


def chunks(n: int, size: int, pulled: list[int]):
    async def gen():
        for _ in range(n):
            pulled.append(1)
            yield b"y" * size

    return gen()


def test_streamed_body_within_the_limit_passes():
    echo, pulled = Echo(), []
    response = post(BodyLimitMiddleware(echo.app, LIMIT), content=chunks(10, 100, pulled))
    assert response.status_code == 200 and response.json()["length"] == 1000
    assert len(pulled) == 10


@pytest.mark.parametrize("swallow", [False, True])
def test_streamed_body_over_the_limit_is_cut_off(swallow):
    echo, pulled = Echo(swallow_errors=swallow), []
    request = httpx.Request("POST", "http://testserver/echo", content=chunks(1, 1, []))
    assert "content-length" not in request.headers and request.headers["transfer-encoding"] == "chunked"
    response = post(BodyLimitMiddleware(echo.app, LIMIT), content=chunks(100, 100, pulled))
    assert_413(response)
    assert len(pulled) <= 12, "the middleware kept reading after the limit was passed"


# --- raw ASGI: headers httpx would not send -------------------------------------------------


def call_asgi(app, headers: list[tuple[bytes, bytes]], body: bytes = b"", scope_type: str = "http"):
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": scope_type, "method": "POST", "path": "/echo", "headers": headers, "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b"", b" 10", b"0x10"])
def test_non_digit_content_length_is_refused(value):
    calls = []

    async def app(scope, receive, send):
        calls.append(scope)

    sent = call_asgi(BodyLimitMiddleware(app, LIMIT), [(b"content-length", value)], b"0123456789")
    assert calls == []
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"] == "request_too_large"


def test_other_scopes_pass_through():
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["type"])

    call_asgi(BodyLimitMiddleware(app, 0), [(b"content-length", b"999999")], scope_type="lifespan")
    call_asgi(BodyLimitMiddleware(app, 0), [(b"content-length", b"999999")], scope_type="websocket")
    assert calls == ["lifespan", "websocket"]


def test_app_response_after_the_limit_is_replaced_by_413():
    """An app that reads the body itself and reports its own error still yields the 413."""

    async def app(scope, receive, send):
        try:
            await receive()
        except Exception:
            pass
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"boom"})

    sent = call_asgi(BodyLimitMiddleware(app, 5), [], b"0123456789")
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert b"boom" not in b"".join(m.get("body", b"") for m in sent)
