"""Real servers for integration tests: `bentoml serve .` on the tiny profile, over HTTP.

`server` is shared by the whole session. Tests that need other settings (an allow-list,
short timeouts) start their own with `start_server(...)`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT

BENTOML = str(Path(sys.executable).parent / "bentoml")
READY_TIMEOUT_S = 240

# Small limits keep the oversized-input tests cheap; everything else is the default.
TEST_LIMITS = {"IMAGE_EMBED_MAX_IMAGE_BYTES": str(2 * 1024 * 1024), "IMAGE_EMBED_MAX_BODY_BYTES": str(8 * 1024 * 1024)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path
    search_url: str | None = None  # IMAGE_EMBED_SEARCH_URL: its indexes are in PostgreSQL

    def log(self, tail: int = 80) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL whatever is left, workers included: BentoML starts its
        workers in sessions of their own, so signalling the process group misses them."""
        try:
            family = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        for proc in family:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        return self.process.wait()

    def kill(self) -> None:
        """SIGKILL the server and every worker at once (a crash, not a shutdown)."""
        try:
            family = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            family = []
        for proc in family:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(30)


def server_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "IMAGE_EMBED_PROFILE": "tiny", "BENTOML_CONFIG": str(ROOT / "configuration.yaml")}
    env.update(TEST_LIMITS)
    env.update(extra)
    return env


def private_home() -> str:
    """A BENTOML_HOME of one server's own that shares the session's model and Bento stores.

    `bentoml serve` wipes $BENTOML_HOME/prometheus_multiproc_dir when it starts, so servers
    sharing a home would erase each other's metrics.
    """
    shared = Path(os.environ["BENTOML_HOME"])
    home = Path(tempfile.mkdtemp(prefix="bentoml-home-"))
    for store in ("models", "bentos"):
        (shared / store).mkdir(parents=True, exist_ok=True)
        (home / store).symlink_to(shared / store)
    return str(home)


def start_server(target: str = ".", *, args: tuple[str, ...] = (), cwd: Path = ROOT, **extra_env: str) -> Server:
    """`bentoml serve <target> [args]` (the source tree, or a built Bento's tag) on a free port,
    from `cwd` (another source tree: tests/integration/catalog_entry.py)."""
    port = free_port()
    # Each server owns its indexes (one writer per data directory).
    extra_env.setdefault("IMAGE_EMBED_DATA_DIR", tempfile.mkdtemp(prefix="index-data-"))
    log_path = Path(tempfile.mkstemp(prefix="bentoml-serve-", suffix=".log")[1])
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [BENTOML, "serve", target, "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=cwd,
        env=server_env(**{"BENTOML_HOME": private_home(), **extra_env}),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() ends every worker
    )
    server = Server(
        url=f"http://127.0.0.1:{port}", process=process, log_path=log_path, search_url=extra_env.get("IMAGE_EMBED_SEARCH_URL")
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{server.log()}")
        try:
            # A generous client timeout: an abandoned probe keeps BentoML's shutdown waiting.
            if httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"bentoml serve was not ready after {READY_TIMEOUT_S} s:\n{server.log()}")


@pytest.fixture(scope="session")
def server(tiny_models):
    srv = start_server()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def pg_server(tiny_models):
    """A server whose indexes are in PostgreSQL (a database of the session's, tests/postgres.py)."""
    from tests.postgres import fresh_database

    srv = start_server(IMAGE_EMBED_SEARCH_URL=fresh_database("serve"))
    yield srv
    srv.stop()


@pytest.fixture()
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def docker_engine(request):
    """A Docker engine and the local base image (scripts/docker_env.sh up: apt, dockerd,
    debootstrap; once per machine), and dockerd stopped after the session if it started it.
    Where docker cannot run the container tests are skipped, or fail with --containers=require."""
    from bench.docker_images import engine_down, engine_up

    done = engine_up()
    if done.returncode != 0:
        why = f"docker cannot run here (scripts/docker_env.sh up exited {done.returncode}):\n{done.stderr[-3000:]}"
        if request.config.getoption("--containers") == "require":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    yield
    engine_down()


FIGURES: dict[str, str] = {}  # what the container tests measure, printed after the results


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("container figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def images_server():
    """A loopback image server (tests/localhttp.py) for the session's URL tests."""
    from tests.localhttp import LocalHTTPServer

    with LocalHTTPServer() as local:
        yield local


@pytest.fixture(scope="session")
def named_models(tiny_models, images_server):
    """A server of CLIP models by name and a model added by its catalog file alone
    (tests/integration/catalog_entry.py): clip, dinov2, two extra CLIPs (a ViT-L/14 and an
    RN50x16 tiny twin), and the test-only dinov2_small_test, from a copy of the source tree."""
    from tests.integration.catalog_entry import serve_named_models

    srv = serve_named_models(images_server)
    yield srv
    srv.stop()
