"""The structured access log: one JSON-ready record per request, nothing secret in it."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from gateway.access_log import AccessLogMiddleware, JSONLineFormatter, access_log_enabled


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[dict] = []

    def emit(self, record):
        self.records.append(record.msg)


@pytest.fixture()
def logged():
    logger = logging.getLogger("test.access")
    handler = Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def echo(request):
        await request.body()
        return PlainTextResponse("x" * 10)

    async def fail(_request):
        return JSONResponse({"error": "nope"}, status_code=400)

    routes = [Route("/encode_image", echo, methods=["POST"]), Route("/bad", fail), Route("/livez", echo)]
    app = AccessLogMiddleware(Starlette(routes=routes), logger=logger)
    yield app, handler.records
    logger.removeHandler(handler)


def call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def test_one_record_per_request_with_duration_and_sizes(logged):
    app, records = logged
    resp = call(app, "POST", "/encode_image?q=secret+text", content=b"12345", headers={"authorization": "Bearer topsecretkey"})
    assert resp.status_code == 200
    (record,) = records
    assert record["event"] == "access" and record["method"] == "POST"
    assert record["path"] == "/encode_image" and record["status"] == 200
    assert record["bytes_in"] == 5 and record["bytes_out"] == 10
    assert record["duration_ms"] >= 0
    assert resp.headers["x-request-id"] == record["request_id"]
    line = JSONLineFormatter().format(logging.LogRecord("a", logging.INFO, "", 0, record, None, None))
    assert "secret" not in line and "topsecretkey" not in line
    assert json.loads(line)["path"] == "/encode_image"


def test_client_request_id_is_kept_when_well_formed(logged):
    app, records = logged
    assert call(app, "GET", "/bad", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    weird = call(app, "GET", "/bad", headers={"x-request-id": "no spaces allowed\n"})
    assert weird.headers["x-request-id"] != "no spaces allowed\n" and len(weird.headers["x-request-id"]) == 32
    assert [r["status"] for r in records] == [400, 400]


def test_probes_are_quiet_unless_they_fail(logged):
    app, records = logged
    call(app, "GET", "/livez")
    assert records == []


def test_mode_setting(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_ACCESS_LOG", "off")
    assert access_log_enabled() is False
    monkeypatch.setenv("IMAGE_EMBED_ACCESS_LOG", "yaml")
    with pytest.raises(ValueError):
        access_log_enabled()
