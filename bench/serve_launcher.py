"""Start `bentoml serve .` for a script, measure it, and end it (gently or with kill -9).

Used by bench/load.py and bench/startup.py; the pattern is tests/integration/conftest.py's:

- Each server gets a BENTOML_HOME of its own whose `models` and `bentos` are symlinks to the
  shared store (`bentoml serve` wipes $BENTOML_HOME/prometheus_multiproc_dir at start, so
  servers sharing a home would erase each other's metrics).
- It runs in a session of its own, on 127.0.0.1 and a free port, logging to a temp file.
- BentoML starts its workers in sessions of their own, so ending the server means signalling
  every process of its tree by pid (psutil), not a process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
# the venv's `bentoml` script, else the module (wheels installed with `pip --target` have no script beside python)
_SCRIPT = Path(sys.executable).parent / "bentoml"
BENTOML = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "bentoml"]
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0
GRACEFUL_SHUTDOWN_S = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_home() -> Path:
    return Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")


def private_home(shared: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="bentoml-home-"))
    for store in ("models", "bentos"):
        (shared / store).mkdir(parents=True, exist_ok=True)
        (home / store).symlink_to(shared / store)
    return home


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path
    known: list[psutil.Process] = field(default_factory=list)

    def family(self) -> list[psutil.Process]:
        """The server and every descendant alive now (plus those seen before: a worker can
        outlive its arbiter)."""
        try:
            root = psutil.Process(self.process.pid)
            now = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            now = []
        self.known = list({p.pid: p for p in [*self.known, *now]}.values())
        return [p for p in self.known if _alive(p)]

    def memory_bytes(self) -> int:
        """Memory of the whole tree: the sum of each process's PSS (proportional set size: a page
        shared by k processes counts 1/k in each, so the sum is what the tree really holds;
        a sum of RSS would count the forked workers' shared pages once per worker). RSS where
        the system reports no PSS (not Linux). About 10 ms per process: sample sparingly."""
        total = 0
        for proc in self.family():
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
        return total

    def log(self, tail: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-tail:])

    def kill9(self) -> int:
        """SIGKILL every process of the tree at once (a crash, not a shutdown). Returns how many."""
        family = self.family()
        for proc in family:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        self.process.wait(30)
        psutil.wait_procs(family, timeout=30)
        return len(family)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL whatever of the tree is left after STOP_TIMEOUT_S."""
        family = self.family()
        if self.process.poll() is None:
            self.process.terminate()
        _, alive = psutil.wait_procs(family, timeout=STOP_TIMEOUT_S)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.process.wait(30)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start(env: dict[str, str], home: Path, args: tuple[str, ...] = (), ready_timeout: float = READY_TIMEOUT_S) -> Server:
    """`bentoml serve . [args]` with `env` (the caller's full environment) and BENTOML_HOME=home;
    returns once /readyz answers 200, or raises with the log's tail."""
    port = free_port()
    log_path = Path(tempfile.mkstemp(prefix="load-report-serve-", suffix=".log")[1])
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*BENTOML, "serve", ".", "--host", "127.0.0.1", "--port", str(port),
             "--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_S), *args],
            cwd=ROOT,
            env={**env, "BENTOML_HOME": str(home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/readyz", timeout=30, trust_env=False).status_code == 200:
                server.family()
                return server
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"bentoml serve was not ready after {ready_timeout:.0f} s:\n{server.log()}")
