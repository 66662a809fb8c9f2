"""/readyz: 503 naming the runners that are down, whatever way they fail; never a 500."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time

import aiohttp
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.health import Health, probe_runner
from gateway.runner_client import RunnerClient
from tests.conftest import ROOT


class FakeProxy:
    """Stands in for BentoML's RemoteProxy: `is_ready(timeout)` answers, hangs or raises."""

    def __init__(self, behaviour: object) -> None:
        self.behaviour = behaviour

    async def is_ready(self, timeout: float | None = None) -> bool:
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if isinstance(self.behaviour, BaseException):
            raise self.behaviour
        return bool(self.behaviour)


class LocalRunner:
    """A dependency resolved in-process (no HTTP): nothing to probe."""


class Gateway(Health):
    """Health over a runner client holding these proxies; `__is_ready__` as the service's."""

    def __init__(self, **runners: object) -> None:
        super().__init__(RunnerClient(runners, served=[]))

    async def __is_ready__(self) -> bool:
        return await self.check_ready()


def test_every_kind_of_failure_is_not_ready():
    disconnected = aiohttp.ServerDisconnectedError()
    refused = aiohttp.ClientOSError(111, "Connect call failed")
    assert asyncio.run(probe_runner(FakeProxy(True))) is None
    assert "did not answer 200" in asyncio.run(probe_runner(FakeProxy(False)))
    assert asyncio.run(probe_runner(FakeProxy("hang"), timeout=0.05)) == "no answer within 0.05 s"
    assert asyncio.run(probe_runner(FakeProxy(disconnected))).startswith("ServerDisconnectedError")
    assert asyncio.run(probe_runner(FakeProxy(refused))).startswith("ClientOSError")
    assert asyncio.run(probe_runner(FakeProxy(RuntimeError("boom")))) == "RuntimeError: boom"


def test_ready_when_every_runner_is_ready():
    gateway = Gateway(clip=FakeProxy(True), dino=FakeProxy(True), local=LocalRunner())
    assert asyncio.run(gateway.__is_ready__()) is True


def test_runners_are_probed_concurrently():
    gateway = Gateway(**{f"r{i}": FakeProxy("hang") for i in range(6)})
    started = time.monotonic()
    down = asyncio.run(gateway.runners_not_ready(timeout=0.3))
    elapsed = time.monotonic() - started
    assert sorted(down) == [f"r{i}" for i in range(6)]
    assert all(why == "no answer within 0.3 s" for why in down.values())
    assert elapsed < 1.0, f"probes ran one after another ({elapsed:.2f} s)"


def readyz_client(gateway: Gateway) -> TestClient:
    """A route that calls `__is_ready__` as BentoML's /readyz does; Starlette's own handlers."""

    async def readyz(_request):
        from starlette.responses import PlainTextResponse

        assert await gateway.__is_ready__()
        return PlainTextResponse("\n")

    return TestClient(Starlette(routes=[Route("/readyz", readyz)]), raise_server_exceptions=False)


def test_a_dead_runner_gives_a_json_503_naming_it():
    gateway = Gateway(
        clip=FakeProxy(aiohttp.ServerDisconnectedError()),
        dino=FakeProxy(True),
        face=FakeProxy(False),
    )
    resp = readyz_client(gateway).get("/readyz")
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["retry-after"] == "1"
    body = resp.json()
    assert body["error"] == "not_ready"
    assert body["detail"] == "runner(s) not ready: clip, face"
    assert set(body["runners"]) == {"clip", "face"}
    assert body["runners"]["clip"].startswith("ServerDisconnectedError")


def test_all_ready_gives_200():
    assert readyz_client(Gateway(clip=FakeProxy(True))).get("/readyz").status_code == 200


def test_the_configuration_turns_bentomls_runner_probe_off_for_the_gateway_only():
    """Checked the way a worker loads it (Service.inject_config), in a process of its own."""
    script = textwrap.dedent(
        """
        import bentoml
        from bentoml._internal.configuration.containers import BentoMLContainer

        @bentoml.service(name="clip_runner")
        class Runner:
            pass

        @bentoml.service(name="image_embed")
        class Gateway:
            clip = bentoml.depends(Runner)

        target = {"gateway": Gateway, "runner": Runner}[__import__("sys").argv[1]]
        target.inject_config()
        print(BentoMLContainer.api_server_config.runner_probe.enabled.get())
        """
    )
    env = {**os.environ, "BENTOML_CONFIG": str(ROOT / "configuration.yaml")}
    answers = {}
    for target in ("gateway", "runner"):
        out = subprocess.run([sys.executable, "-c", script, target], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        answers[target] = out.stdout.strip().splitlines()[-1]
    assert answers == {"gateway": "False", "runner": "True"}


def test_the_gateway_class_has_the_hook():
    """BentoML looks `__is_ready__` up with hasattr on the class it serves: ImageEmbed."""
    import ast

    tree = ast.parse((ROOT / "service.py").read_text())
    gateway = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ImageEmbed")
    hook = next(n for n in gateway.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "__is_ready__")
    assert "check_ready" in ast.unparse(hook)
