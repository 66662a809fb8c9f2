"""A runner that does not answer within its timeout is a 504 `model_timeout`, never a 500."""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

import aiohttp
import pytest
from bentoml.exceptions import BentoMLException

from gateway.errors import RunnerTimeout, RunnerUnavailable, api_errors
from gateway.runner_client import call_runner


async def fails(exc: BaseException):
    raise exc


@pytest.mark.parametrize(
    "exc",
    [
        asyncio.TimeoutError(),
        TimeoutError(),
        aiohttp.ServerTimeoutError("Timeout on reading data from socket"),
        BentoMLException("Not able to process the request in 50 seconds", error_code=HTTPStatus.GATEWAY_TIMEOUT),
    ],
    ids=["asyncio", "builtin", "aiohttp-read", "runner-504"],
)
def test_timeouts_become_504(exc):
    @api_errors
    async def api(self) -> list[float]:
        return await call_runner("internvit", fails(exc))

    response = asyncio.run(api(None))
    assert response.status_code == 504
    body = json.loads(response.body)
    assert body["error"] == "model_timeout" and "internvit" in body["detail"]
    assert response.headers["retry-after"] == "1"


def test_a_timeout_is_a_kind_of_unavailability():
    assert issubclass(RunnerTimeout, RunnerUnavailable)
    with pytest.raises(RunnerTimeout):
        asyncio.run(call_runner("dino", fails(asyncio.TimeoutError())))
    with pytest.raises(RunnerUnavailable) as info:
        asyncio.run(call_runner("dino", fails(aiohttp.ClientConnectionError("refused"))))
    assert type(info.value) is RunnerUnavailable and info.value.status == 503
