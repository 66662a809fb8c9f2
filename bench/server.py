"""Start and stop a server under test for the benchmarks: a free loopback port, the
environment, readiness, and a stop that leaves no worker behind.

`server_process(name, cmd, env, ready_url)` is a context manager: it starts `cmd` in a
session of its own with its output in a temp log (kept, and named, when something went
wrong), waits until `ready_url` answers 200, yields the server's processes, and always stops
it (on errors and Ctrl-C too): SIGTERM, then SIGKILL by pid of whatever is left.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 20.0  # after SIGTERM, before SIGKILL
GRACEFUL_SHUTDOWN_S = 5  # `bentoml serve --timeout-graceful-shutdown`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(profile: str, bentoml_config: str = "") -> dict[str, str]:
    env = dict(os.environ, IMAGE_EMBED_PROFILE=profile, BENTOML_DO_NOT_TRACK="true", HF_HUB_OFFLINE="1")
    env.pop("BENTOML_CONFIG", None)
    if bentoml_config:
        env["BENTOML_CONFIG"] = str(Path(bentoml_config).resolve())
    return env


def _family(pid: int) -> list:
    """The process and its descendants, as psutil handles (they refuse to signal a reused pid)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_process(proc: subprocess.Popen, known: list) -> list[int]:
    """SIGTERM the server; after a grace period SIGKILL, by pid, whatever is left of it and of
    its descendants (`known`, listed when it became ready, and those alive now). Returns the
    pids it had to kill. `bentoml serve` starts its workers in sessions of their own, and a
    worker can outlive its arbiter, so signalling a process group would not be enough."""
    family = list({p.pid: p for p in [*known, *_family(proc.pid)]}.values())
    proc.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and (proc.poll() is None or any(map(_alive, family))):
        time.sleep(0.2)
    killed = [p for p in family if _alive(p)]
    for process in killed:
        with contextlib.suppress(Exception):
            process.kill()
    if killed:
        print(f"killed pids {[p.pid for p in killed]}: still running {STOP_TIMEOUT_S:.0f} s after SIGTERM")
    proc.wait()
    return [p.pid for p in killed]


def wait_ready(proc: subprocess.Popen, url: str, log_path: str) -> float:
    import httpx

    def tail() -> str:
        return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-40:])

    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT_S:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}:\n{tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=3, trust_env=False).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {READY_TIMEOUT_S:.0f} s:\n{tail()}")


@contextlib.contextmanager
def server_process(name: str, cmd: list[str], env: dict[str, str], ready_url: str):
    """Start a server in its own session, wait until `ready_url` answers 200, always stop it.
    Yields the server's processes (psutil handles) as they were once it was ready."""
    log = tempfile.NamedTemporaryFile(prefix=f"benchmark-{name}-", suffix=".log", delete=False)
    print(f"starting {name}: {' '.join(cmd)} (log: {log.name})", flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ok, family = False, []
    try:
        print(f"{name} ready after {wait_ready(proc, ready_url, log.name):.1f} s", flush=True)
        family = _family(proc.pid)
        yield family
        ok = True
    finally:
        ok = not stop_process(proc, family) and ok
        log.close()
        if ok:
            os.unlink(log.name)
        else:
            print(f"{name} stopped; its log is kept at {log.name}", file=sys.stderr)


def scenario_setup(profile: str) -> None:
    """What a benchmark scenario does first: its profile (before `models` is imported), no
    telemetry, no hub downloads, and only errors from the libraries' loggers."""
    import logging

    os.environ["IMAGE_EMBED_PROFILE"] = profile
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger().setLevel(logging.ERROR)


def write_json(path: Path | None, report: dict) -> None:
    """Write the report (when --json named a path) and say so."""
    import json

    if path:
        path.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {path}")

