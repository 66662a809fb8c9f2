"""Failures into responses: client errors keep their status, runner trouble becomes 503."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

import aiohttp
import pytest
from bentoml.exceptions import BadInput, BentoMLException, InternalServerError, ServiceUnavailable
from starlette.responses import JSONResponse

from gateway.errors import RunnerUnavailable, api_errors
from gateway.runner_client import call_runner
from intake.errors import ClientError, ImageTooLarge, UnsupportedImageFormat


def body(response: JSONResponse) -> dict:
    return json.loads(response.body)


def raising(exc: BaseException):
    @api_errors
    async def api(self, x: int = 0) -> list[float]:
        """Doc kept."""
        raise exc

    return api


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (ClientError("send an image", code="missing_image"), 400, "missing_image"),
        (ImageTooLarge("too big"), 413, "image_too_large"),
        (UnsupportedImageFormat("TIFF"), 415, "unsupported_image_format"),
        (ClientError("teapot", status=418), 418, "bad_request"),
    ],
)
def test_client_errors_become_json_with_their_status(exc, status, code):
    response = asyncio.run(raising(exc)(None))
    assert isinstance(response, JSONResponse)
    assert response.status_code == status
    assert body(response) == {"error": code, "detail": exc.detail}
    assert "retry-after" not in response.headers


def test_a_503_refusal_passed_on_carries_retry_after():
    exc = ClientError("PostgreSQL at postgresql://u@db/x is unreachable", status=503, code="search_backend_unavailable")
    response = asyncio.run(raising(exc)(None))
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert body(response) == {"error": "search_backend_unavailable", "detail": exc.detail}


def test_runner_unavailable_becomes_503_with_retry_after():
    response = asyncio.run(raising(RunnerUnavailable("clip", "overloaded, retry shortly"))(None))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert body(response) == {"error": "model_unavailable", "detail": "the clip model is unavailable: overloaded, retry shortly"}


def test_results_and_other_errors_pass_through():
    @api_errors
    async def ok(self, x: int) -> list[float]:
        """Doc kept."""
        return [float(x)]

    assert asyncio.run(ok(None, 3)) == [3.0]
    assert ok.__name__ == "ok" and ok.__doc__ == "Doc kept."
    with pytest.raises(ZeroDivisionError):
        asyncio.run(raising(ZeroDivisionError("bug"))(None))


async def fails(exc: BaseException):
    raise exc


async def answers():
    return [1.0, 2.0]


def call(exc: BaseException | None):
    return asyncio.run(call_runner("clip", fails(exc) if exc is not None else answers()))


def test_call_runner_returns_the_result():
    assert call(None) == [1.0, 2.0]


@pytest.mark.parametrize(
    "exc",
    [ServiceUnavailable("queue full"), BentoMLException("slow down", error_code=HTTPStatus.TOO_MANY_REQUESTS)],
)
def test_overload_becomes_runner_unavailable(exc):
    with pytest.raises(RunnerUnavailable) as info:
        call(exc)
    assert info.value.runner == "clip" and "overloaded" in info.value.detail
    assert info.value.__cause__ is exc


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (BadInput("wrong shape"), 400),
        (BentoMLException("nope", error_code=HTTPStatus.BAD_REQUEST), 400),
        (BentoMLException("unprocessable", error_code=HTTPStatus.UNPROCESSABLE_ENTITY), 422),
    ],
)
def test_runner_4xx_becomes_client_error(exc, status):
    with pytest.raises(ClientError) as info:
        call(exc)
    assert info.value.status == status
    assert "the clip model refused the input" in info.value.detail and exc.message in info.value.detail


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ClientConnectionError("refused"),
        aiohttp.ServerDisconnectedError(),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "reset"),
    ],
)
def test_connection_failures_become_runner_unavailable(exc):
    with pytest.raises(RunnerUnavailable) as info:
        call(exc)
    assert info.value.runner == "clip"
    assert type(exc).__name__ in info.value.detail
    assert str(info.value).startswith("clip: connection failed")


@pytest.mark.parametrize(
    "exc", [InternalServerError("model crashed"), BentoMLException("generic"), ValueError("a bug"), RuntimeError("x")]
)
def test_server_faults_are_reraised(exc):
    with pytest.raises(type(exc)) as info:
        call(exc)
    assert info.value is exc


def test_call_runner_and_api_errors_compose():
    @api_errors
    async def api(self):
        return await call_runner("clip", fails(ServiceUnavailable("busy")))

    response = asyncio.run(api(None))
    assert response.status_code == 503 and body(response)["error"] == "model_unavailable"
