"""Shutdown order: the runners outlive the gateway.

On SIGTERM, BentoML's arbiter (circus) signals every worker at once. A gateway request in
flight at that moment may still need a runner afterwards (its image was still downloading,
or it calls several models in turn); with the runners already stopped it fails with 503
(checked: tests/integration/test_graceful_shutdown.py). So a runner worker keeps serving after
SIGTERM until the gateway workers have exited, which they do once their requests in flight are
answered, at most RUNNER_DRAIN_MAX_S; then it stops as usual (the index runner checkpoints
its SQLite files then).
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import bentoml

GATEWAY_SERVICE = "image_embed"  # service.py's @bentoml.service name
WORKER_MODULE = "_bentoml_impl.worker.service"  # how BentoML starts every service's workers
# Above the gateway's 60 s request timeout: by then every request in flight has its answer.
RUNNER_DRAIN_MAX_S = 90.0

Handler = Callable[[int, "FrameType | None"], Any]


def chain_sigterm(handler: Callable[[Handler, int, "FrameType | None"], None]) -> bool:
    """Run `handler(previous, sig, frame)` on SIGTERM instead of the current handler (uvicorn's,
    which starts its graceful shutdown); `handler` decides when to call `previous`.

    Only from the main thread (where BentoML runs a service's startup hooks), and only over a
    Python handler: anything else is left alone and False returned.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return False
    signal.signal(signal.SIGTERM, functools.partial(handler, previous))
    return True


def worker_service(args: list[str]) -> str | None:
    """The service a BentoML worker serves, from its command line; None for other processes."""
    if WORKER_MODULE not in args or "--service-name" not in args:
        return None
    at = args.index("--service-name") + 1
    return args[at] if at < len(args) else None


def sibling_workers(service: str) -> list[Any]:
    """The worker processes of `service` started by the same arbiter as this process."""
    import psutil

    found = []
    try:
        siblings = psutil.Process(os.getppid()).children()
    except psutil.Error:
        return []
    for proc in siblings:
        try:
            if proc.pid != os.getpid() and worker_service(proc.cmdline()) == service:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _alive(proc: Any) -> bool:
    import psutil

    try:
        return proc.status() != psutil.STATUS_ZOMBIE  # exited, not yet reaped by the arbiter
    except psutil.Error:
        return False


def wait_for_gateway(max_wait_s: float = RUNNER_DRAIN_MAX_S) -> None:
    """Return once no gateway worker is left (or after `max_wait_s`)."""
    workers = sibling_workers(GATEWAY_SERVICE)
    deadline = time.monotonic() + max_wait_s
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)


def _stop_after_gateway(previous: Handler, sig: int, frame: FrameType | None, *, state: dict) -> None:
    if state.get("draining"):  # a second SIGTERM: stop now
        previous(sig, frame)
        return
    state["draining"] = True

    def drain() -> None:
        wait_for_gateway()
        previous(sig, None)  # uvicorn's handler only sets flags: safe from this thread

    threading.Thread(target=drain, name="drain-after-gateway", daemon=True).start()


class OutliveGateway:
    """Runner mixin: on SIGTERM, keep serving until the gateway has exited (module docstring)."""

    @bentoml.on_startup
    def stop_after_the_gateway(self) -> None:
        chain_sigterm(functools.partial(_stop_after_gateway, state={}))
