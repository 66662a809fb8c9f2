"""Runners outlive the gateway: SIGTERM is handed on only once the gateway workers are gone."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from runners import shutdown
from runners.shutdown import chain_sigterm, worker_service
from tests.conftest import ROOT


def test_worker_service_reads_bentomls_command_line():
    args = ["/x/python", "-m", "_bentoml_impl.worker.service", "service:ImageEmbed", "--fd", "7"]
    assert worker_service([*args, "--service-name", "image_embed", "--worker-id", "1"]) == "image_embed"
    assert worker_service([*args, "--service-name", "clip_runner"]) == "clip_runner"
    assert worker_service(args) is None
    assert worker_service(["/x/python", "-m", "pytest", "--service-name", "image_embed"]) is None


def test_the_signal_is_handed_on_after_the_gateway_exits(monkeypatch):
    gateway_gone = threading.Event()
    monkeypatch.setattr(shutdown, "wait_for_gateway", lambda max_wait_s=0: gateway_gone.wait(10))
    handed: list[float] = []
    state: dict = {}
    shutdown._stop_after_gateway(lambda sig, frame: handed.append(time.monotonic()), signal.SIGTERM, None, state=state)
    time.sleep(0.3)
    assert handed == [], "the runner stopped while the gateway was still serving"
    released = time.monotonic()
    gateway_gone.set()
    deadline = time.monotonic() + 5
    while not handed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert handed and handed[0] >= released


def test_a_second_sigterm_stops_at_once(monkeypatch):
    monkeypatch.setattr(shutdown, "wait_for_gateway", lambda max_wait_s=0: time.sleep(10))
    handed: list[int] = []
    state: dict = {}
    previous = lambda sig, frame: handed.append(sig)  # noqa: E731
    shutdown._stop_after_gateway(previous, signal.SIGTERM, None, state=state)
    shutdown._stop_after_gateway(previous, signal.SIGTERM, None, state=state)
    assert handed == [signal.SIGTERM]


def test_wait_for_gateway_follows_a_sibling_gateway_worker():
    """A parent with two children: a fake gateway worker and a process that waits for it."""
    code = """
import subprocess, sys
waiter = subprocess.Popen([sys.executable, "-c",
    "import time; from runners.shutdown import wait_for_gateway; "
    "print('ready', flush=True); input(); s = time.monotonic(); wait_for_gateway(20); "
    "print(round(time.monotonic() - s, 1), flush=True)"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
assert waiter.stdout.readline().strip() == "ready"
gateway = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)",
                            "-m", "_bentoml_impl.worker.service", "--service-name", "image_embed"])
print(waiter.communicate("go\\n", timeout=30)[0].strip())
gateway.wait()
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)  # `python -c` imports from its working directory
    assert out.returncode == 0, out.stderr
    waited = float(out.stdout.strip().splitlines()[-1])
    assert 0.5 <= waited < 10, waited


def test_chain_sigterm_only_from_the_main_thread():
    results = []
    thread = threading.Thread(target=lambda: results.append(chain_sigterm(lambda *a: None)))
    thread.start()
    thread.join()
    assert results == [False]


def test_chain_sigterm_runs_the_new_handler_with_the_old_one():
    calls = []
    original = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, lambda sig, frame: calls.append("uvicorn"))
        assert chain_sigterm(lambda previous, sig, frame: (calls.append("ours"), previous(sig, frame)))
        signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, original)
    assert calls == ["ours", "uvicorn"]


@pytest.mark.parametrize("name", ["clip", "dino", "internvit", "person", "face", "caption", "index"])
def test_every_runner_outlives_the_gateway(name):
    from runners.index import IndexRunner
    from runners.services import runner_service

    runner = IndexRunner if name == "index" else runner_service(name)
    assert issubclass(runner.inner, shutdown.OutliveGateway)
