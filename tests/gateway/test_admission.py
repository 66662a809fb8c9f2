"""AdmissionMiddleware: at most N requests in flight; the excess gets an immediate 429 with
Retry-After in the gateway's JSON shape; probes pass; slots come back however a request ends."""

from __future__ import annotations

import anyio
import httpx
import pytest

from config.settings import SettingsError, load_settings
from gateway.admission import EXEMPT_PATHS, AdmissionMiddleware
from gateway.openapi import complete_spec

LIMIT = 4


class Gate:
    """An ASGI app whose /work requests wait until released; /fail raises; others answer at once."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.entered = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["path"] == "/fail":
            raise RuntimeError("boom")
        if scope["path"] == "/work":
            self.entered += 1
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def assert_refusal(resp: httpx.Response) -> None:
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "1"
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["error"] == "overloaded"
    assert "IMAGE_EMBED_MAX_IN_FLIGHT" in body["detail"]


async def fill(client: httpx.AsyncClient, gate: Gate, tg, results: list) -> None:
    """Start LIMIT requests that stay in flight until the gate opens."""

    async def one() -> None:
        results.append(await client.get("/work"))

    for _ in range(LIMIT):
        tg.start_soon(one)
    with anyio.fail_after(10):
        while gate.entered < LIMIT:
            await anyio.sleep(0.001)


@pytest.mark.anyio
async def test_beyond_the_limit_is_refused_at_once_and_the_admitted_ones_finish():
    gate = Gate()
    app = AdmissionMiddleware(gate, max_in_flight=LIMIT)
    admitted: list[httpx.Response] = []
    async with client_for(app) as client, anyio.create_task_group() as tg:
        await fill(client, gate, tg, admitted)
        assert app.in_flight == LIMIT
        # 10x the limit at once: each is refused without waiting for a slot.
        refused: list[httpx.Response] = []

        async def extra() -> None:
            refused.append(await client.post("/work", content=b"x" * 100))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as burst:
                for _ in range(10 * LIMIT):
                    burst.start_soon(extra)
        assert len(refused) == 10 * LIMIT
        for resp in refused:
            assert_refusal(resp)
        assert gate.entered == LIMIT, "a refused request reached the app"
        assert app.refused == 10 * LIMIT
        gate.release.set()
    assert [r.status_code for r in admitted] == [200] * LIMIT
    assert app.in_flight == 0


@pytest.mark.anyio
async def test_probes_and_metrics_pass_while_full():
    gate = Gate()
    app = AdmissionMiddleware(gate, max_in_flight=LIMIT)
    admitted: list[httpx.Response] = []
    async with client_for(app) as client, anyio.create_task_group() as tg:
        await fill(client, gate, tg, admitted)
        for path in sorted(EXEMPT_PATHS):
            assert (await client.get(path)).status_code == 200, path
        assert_refusal(await client.get("/health"))  # the full health report calls every runner
        gate.release.set()


@pytest.mark.anyio
async def test_slots_come_back_after_errors_and_cancellation():
    gate = Gate()
    app = AdmissionMiddleware(gate, max_in_flight=1)
    async with client_for(app) as client:
        for _ in range(3):
            with pytest.raises(RuntimeError):
                await client.get("/fail")
        assert app.in_flight == 0
        with anyio.move_on_after(0.05):  # a request cancelled mid-flight (timeout middleware)
            await client.get("/work")
        assert app.in_flight == 0
        gate.release.set()
        assert (await client.get("/work")).status_code == 200
    assert app.refused == 0


@pytest.mark.anyio
async def test_recovers_after_overload():
    gate = Gate()
    app = AdmissionMiddleware(gate, max_in_flight=LIMIT)
    admitted: list[httpx.Response] = []
    async with client_for(app) as client:
        async with anyio.create_task_group() as tg:
            await fill(client, gate, tg, admitted)
            assert_refusal(await client.get("/work"))
            gate.release.set()
        statuses = [(await client.get("/work")).status_code for _ in range(2 * LIMIT)]
    assert statuses == [200] * (2 * LIMIT)


def test_non_http_scopes_pass_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    middleware = AdmissionMiddleware(app, max_in_flight=1)
    middleware.in_flight = 1  # full
    anyio.run(middleware, {"type": "lifespan"}, None, None)
    assert seen == ["lifespan"]


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        AdmissionMiddleware(Gate(), max_in_flight=0)


def test_setting_default_and_env(monkeypatch):
    monkeypatch.delenv("IMAGE_EMBED_MAX_IN_FLIGHT", raising=False)
    assert load_settings().max_in_flight == 64
    monkeypatch.setenv("IMAGE_EMBED_MAX_IN_FLIGHT", "7")
    assert load_settings().max_in_flight == 7
    for bad in ("0", "many"):
        monkeypatch.setenv("IMAGE_EMBED_MAX_IN_FLIGHT", bad)
        with pytest.raises(SettingsError):
            load_settings()


def test_openapi_declares_429_with_retry_after():
    spec = {"paths": {"/encode_image": {"post": {"responses": {"200": {"description": "ok"}}}}, "/livez": {"get": {}}}}
    doc = complete_spec(spec)
    responses = doc["paths"]["/encode_image"]["post"]["responses"]
    assert "overloaded" in responses["429"]["description"]
    for status in ("429", "503"):
        assert "Retry-After" in responses[status]["headers"]
    assert "headers" not in responses["400"]
    assert "responses" not in doc["paths"]["/livez"]["get"]


@pytest.mark.anyio
async def test_the_access_log_around_it_records_the_refusal():
    """service.py's order: AccessLogMiddleware outside AdmissionMiddleware."""
    import logging

    from gateway.access_log import AccessLogMiddleware

    records: list[dict] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.msg)

    logger = logging.getLogger("test.admission.access")
    logger.addHandler(Collect())
    logger.setLevel(logging.INFO)
    gate = Gate()
    app = AccessLogMiddleware(AdmissionMiddleware(gate, max_in_flight=LIMIT), logger=logger)
    admitted: list[httpx.Response] = []
    async with client_for(app) as client, anyio.create_task_group() as tg:
        await fill(client, gate, tg, admitted)
        refused = await client.post("/work", headers={"X-Request-ID": "over-1"})
        assert_refusal(refused)
        assert refused.headers["x-request-id"] == "over-1"
        gate.release.set()
    statuses = {r["request_id"]: r["status"] for r in records}
    assert statuses["over-1"] == 429
    assert sorted(r["status"] for r in records) == [200] * LIMIT + [429]
