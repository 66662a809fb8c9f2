"""The runner connections' keep-alive patch (gateway/runner_connections.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway import runner_connections


def _session_manager(url: str):
    from _bentoml_impl.client.proxy2 import SessionManager

    return SessionManager(url, timeout=5, headers={})


def test_installed_sessions_drop_idle_connections_before_the_runner_does(tmp_path):
    runner_connections.install()
    runner_connections.install()  # idempotent

    async def connector_of(url: str):
        session = _session_manager(url)._make_client()
        try:
            return type(session.connector).__name__, session.connector._keepalive_timeout
        finally:
            await session.close()

    uvicorn_default = 5  # the runner workers' --timeout-keep-alive (BentoML's default)
    for url in (f"file://{tmp_path}/runner.sock", "tcp://127.0.0.1:9"):
        kind, keepalive = asyncio.run(connector_of(url))
        assert keepalive == runner_connections.KEEPALIVE_S < uvicorn_default, (url, kind, keepalive)


def test_the_runner_workers_keep_alive_is_what_the_patch_assumes():
    import inspect

    from _bentoml_impl.worker import service

    params = {p.name: p for p in service.main.params}
    assert params["timeout_keep_alive"].default == 5
    assert "keepalive" not in inspect.getsource(service).replace("keep_alive", "")


def test_a_changed_client_refuses_to_install(monkeypatch):
    from _bentoml_impl.client.proxy2 import SessionManager

    def _make_client(self):  # not BentoML's
        return None

    monkeypatch.setattr(SessionManager, "_make_client", _make_client)
    with pytest.raises(runner_connections.BentoMLClientChanged, match="UPSTREAM_DIGEST"):
        runner_connections.install()
