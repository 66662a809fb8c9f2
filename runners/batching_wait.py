"""A bound on BentoML's deliberate batching wait, learnt from queueing only.

BentoML 1.4.39's `CorkDispatcher.controller` (bentoml/_internal/marshal/dispatcher.py) holds
the requests queued at an idle runner, to let more join the batch, while

    n * (wn + dt + a) <= optimizer.wait * 0.95

(n queued, wn the newest one's wait, dt the 1 ms poll, a the estimated cost per item), where
`optimizer.wait` is the mean wait before the batch started of the last 50 batches, the
dispatcher's own hold included. After one burst of real queueing that mean is about a second,
and every lone request on the idle runner is then held for 0.95 of it, logs that hold as its
wait, and so keeps the mean up: it decays by about 5% per 50 requests (docs/operations.md,
"Batching", has the numbers and the upstream report). `max_latency_ms` does not bound the hold:
it only sheds.

The patch, for the dispatchers of the project's runner APIs (those declaring a bound with
`declare`; others keep BentoML's controller):

1. The hold ends once the oldest queued request has waited `max_batch_wait_ms` (the model
   spec's, per device: models/specs.py BatchLimits), as Triton's max_queue_delay does.
2. The optimizer learns from queueing only: the wait it logs for a batch leaves out the time the
   dispatcher held that batch on purpose (the runner was idle), so holds never teach it that
   waiting pays.

Everything else is BentoML's own: its start-up calibration, its shedding of requests that
cannot finish within `max_latency_ms` (503), its batch assembly and `outbound_call`. Each batch
tells runners/queue_time.py why it was dispatched (the `reason` of image_embed_queue_seconds):

    full       the batch reached max_batch_size
    optimizer  BentoML's estimate says waiting no longer pays (an idle runner: at once)
    max_wait   the estimate would hold it longer; the bound dispatched it
    training   BentoML's start-up calibration (a runner's first ten or so batches)
    bentoml    BentoML's own controller (IMAGE_EMBED_BATCH_WAIT=bentoml, or an undeclared API)

The controller below is a copy of 1.4.39's steady-state loop with the two changes. So that it
cannot silently drift from a newer BentoML, `check_bentoml()` (run by `install()`, at every
worker's start) fails the start with a clear message when the code it was written against
changed: the source of `CorkDispatcher.controller` and `outbound_call`, and the attributes and
signatures used here. IMAGE_EMBED_BATCH_WAIT=bentoml runs BentoML's dispatcher unchanged.
tests/runners/test_batching_wait.py and tests/integration/test_batching_wait.py test it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
import textwrap
import time
from typing import Any

from runners import queue_time

logger = logging.getLogger("image_embed.batching_wait")

BOUND_ATTR = "image_embed_max_batch_wait_s"  # on an API function (declare) and its dispatcher
DECAY = 0.95  # BentoML's hold condition compares against optimizer.wait * 0.95
REASONS = ("full", "optimizer", "max_wait", "training", "bentoml")
# sha256 of the source of the BentoML methods this module copies or relies on, as written
# against bentoml 1.4.39. A newer BentoML must be read again before these change.
UPSTREAM_SOURCE = {
    "CorkDispatcher.controller": "08f67277265ddffdbd761ebee15899cd455b36fa3f71918460214c46aded020d",
    "CorkDispatcher.outbound_call": "13a113189d8dd48ee153dd833290f5f55b600fb07bd9c95d28390cc57bfb6b62",
}


class BentoMLChanged(RuntimeError):
    """BentoML's dispatcher is not the one runners/batching_wait.py was written against."""


def declare(func: Any, max_batch_wait_ms: float) -> Any:
    """Mark a batchable API function with its batching-wait bound (before bentoml.api wraps it)."""
    setattr(func, BOUND_ATTR, max_batch_wait_ms / 1000.0)
    return func


def dispatch_reason(
    n: int, max_batch_size: int, w0: float, wn: float, tick: float, a: float, wait: float, max_wait: float
) -> str | None:
    """Why the batch of the `n` queued requests goes now, or None to hold it one more tick.

    w0 / wn: the oldest / newest queued request's wait so far; `a` the optimizer's cost per item,
    `wait` its mean queueing; `max_wait` the bound. BentoML's rule with the bound added."""
    if n >= max_batch_size:
        return "full"
    if n * (wn + tick + (a or 0)) > wait * DECAY:
        return "optimizer"
    if w0 >= max_wait:
        return "max_wait"
    return None


def queueing_optimizer_class(base: type) -> type:
    """BentoML's Optimizer, with the dispatcher's own hold left out of the waits it learns."""

    class QueueingOptimizer(base):  # type: ignore[misc, valid-type]
        held = 0.0  # the deliberate hold of the batch in flight (one at a time), set at dispatch

        def log_outbound(self, n: int, wait: float, duration: float) -> None:
            super().log_outbound(n=n, wait=max(0.0, wait - self.held), duration=duration)

    return QueueingOptimizer


@functools.cache
def _optimizer_class() -> type:
    from bentoml._internal.marshal.dispatcher import Optimizer

    return queueing_optimizer_class(Optimizer)


def configure(dispatcher: Any, max_wait_s: float) -> None:
    """Bound `dispatcher`'s batching wait and teach its optimizer from queueing only. Call
    before its first request (ServiceAppFactory builds dispatchers before serving)."""
    if dispatcher._controller is not None:
        raise RuntimeError("configure() a dispatcher before its first request")
    setattr(dispatcher, BOUND_ATTR, float(max_wait_s))
    dispatcher.optimizer = _optimizer_class()(dispatcher.max_latency)


async def _calibrate(self: Any) -> None:
    """BentoML's start-up calibration, as 1.4.39's controller runs it (unchanged)."""
    try:
        await self.train_optimizer(self.optimizer.N_SKIPPED_SAMPLE, self.optimizer.N_SKIPPED_SAMPLE + 6, 1)
        for required, batch_size in ((6, 1), (5, 2), (3, 3)):
            await self.train_optimizer(required, 1, batch_size)
            self.optimizer.trigger_refresh()
        if self.optimizer.o_a + self.optimizer.o_b >= self.max_latency:
            logger.warning("the batch cost estimate exceeds max_latency: expect 503s (raise max_latency_ms)")
    except Exception:  # pylint: disable=broad-except  (as BentoML: serve on)
        logger.exception("Error training optimizer")


async def bounded_controller(self: Any) -> None:
    """1.4.39's controller loop with the bound and the hold left out of the optimizer's waits."""
    await _calibrate(self)
    max_wait = getattr(self, BOUND_ATTR)
    free_since: float | None = None  # the runner was idle and the batch being formed held since
    while True:
        try:
            async with self._wake_event:  # block until there's any request in queue
                await self._wake_event.wait_for(self._queue.__len__)
            n = len(self._queue)
            tick = self.TICKET_INTERVAL
            now = time.time()
            w0 = now - self._queue[0].enqueue_time
            wn = now - self._queue[-1].enqueue_time
            a, b = self.optimizer.o_a, self.optimizer.o_b
            # Shedding, as BentoML: the oldest cannot finish within max_latency.
            if n > 1 and w0 + a * n + b >= self.max_latency:
                self._queue.popleft().future.cancel()
                continue
            if self._sema.is_locked():  # the runner is busy: this is queueing
                if n == 1 and w0 >= self.max_latency:
                    self._queue.popleft().future.cancel()
                    continue
                await asyncio.sleep(tick)
                continue
            reason = dispatch_reason(n, self.max_batch_size, w0, wn, tick, a, self.optimizer.wait, max_wait)
            if reason is None:  # a deliberate hold
                free_since = now if free_since is None else free_since
                await asyncio.sleep(tick)
                continue
            self.optimizer.held = 0.0 if free_since is None else min(w0, now - free_since)
            free_since = None
            self._sema.acquire()
            jobs = tuple(self._get_inputs())
            self._loop.create_task(self.outbound_call(jobs, dispatch_reason=reason))
        except Exception:  # pylint: disable=broad-except  (as BentoML: the loop must survive)
            logger.exception("Error processing batch requests")


def _controller(original):
    @functools.wraps(original)
    async def controller(self):
        if getattr(self, BOUND_ATTR, None) is None:
            return await original(self)
        return await bounded_controller(self)

    controller.image_embed_batch_wait_patch = True
    return controller


def bound_dispatchers(factory: Any) -> None:
    """Configure each dispatcher of a ServiceAppFactory whose API function declares a bound."""
    for api, dispatcher in factory.dispatchers.items():
        max_wait = getattr(factory.service.apis[api].func, BOUND_ATTR, None)
        if max_wait is not None:
            configure(dispatcher, max_wait)


def _bounding(original):
    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        bound_dispatchers(self)

    __init__.image_embed_batch_wait_patch = True
    return __init__


def source_digest(func: Any) -> str:
    return hashlib.sha256(textwrap.dedent(inspect.getsource(inspect.unwrap(func))).encode()).hexdigest()


def _parameters(func: Any) -> list[str]:
    return list(inspect.signature(inspect.unwrap(func)).parameters)


def check_bentoml() -> None:
    """Raise BentoMLChanged unless BentoML's dispatcher has the shape this module relies on."""
    from bentoml._internal.marshal.dispatcher import CorkDispatcher, Job, NonBlockSema, Optimizer

    problems = []
    for name, digest in UPSTREAM_SOURCE.items():
        cls_name, attr = name.split(".")
        if source_digest(getattr(CorkDispatcher, attr)) != digest:
            problems.append(f"{name} changed")
    expected = {
        (CorkDispatcher, "train_optimizer"): ["self", "num_required_reqs", "num_reqs_to_train", "training_batch_size"],
        (CorkDispatcher, "outbound_call"): ["self", "inputs_info", "training"],
        (CorkDispatcher, "_get_inputs"): ["self", "num_batches"],
        (Optimizer, "__init__"): ["self", "max_latency"],
        (Optimizer, "log_outbound"): ["self", "n", "wait", "duration"],
        (Optimizer, "trigger_refresh"): ["self"],
    }
    for (cls, attr), params in expected.items():
        found = _parameters(getattr(cls, attr, None)) if callable(getattr(cls, attr, None)) else None
        if found != params:
            problems.append(f"{cls.__name__}.{attr}{tuple(found or ())} is not {cls.__name__}.{attr}{tuple(params)}")
    if "enqueue_time" not in getattr(Job, "__annotations__", {}):
        problems.append("Job has no enqueue_time")
    dispatcher = CorkDispatcher(1000, 2, fallback=lambda: None)
    optimizer = dispatcher.optimizer
    sema = getattr(dispatcher, "_sema", None)
    checks = {
        "a dispatcher's _queue is not a deque": hasattr(dispatcher, "_queue") and hasattr(dispatcher._queue, "popleft"),
        "a dispatcher's _sema is not NonBlockSema(1): batches could overlap":
            isinstance(sema, NonBlockSema) and getattr(sema, "sema", None) == 1,
        "a dispatcher lacks _controller, _wake_event, _loop, max_batch_size or max_latency":
            all(hasattr(type(dispatcher), a) or hasattr(dispatcher, a)
                for a in ("_controller", "_wake_event", "_loop", "max_batch_size", "max_latency")),
        "TICKET_INTERVAL is not a number": isinstance(getattr(CorkDispatcher, "TICKET_INTERVAL", None), float),
        "its Optimizer lacks wait, o_a, o_b or N_SKIPPED_SAMPLE": type(optimizer) is Optimizer
            and all(hasattr(optimizer, a) for a in ("wait", "o_a", "o_b", "N_SKIPPED_SAMPLE")),
    }
    problems += [message for message, ok in checks.items() if not ok]
    if problems:
        raise BentoMLChanged(
            "BentoML's batching dispatcher is not the one runners/batching_wait.py was written against "
            f"(bentoml 1.4.39): {'; '.join(problems)}. Read bentoml/_internal/marshal/dispatcher.py again and "
            "port the patch (then update UPSTREAM_SOURCE), or set IMAGE_EMBED_BATCH_WAIT=bentoml to serve "
            "with BentoML's own dispatcher (lone requests may then wait long after a burst)."
        )


def install(bounded: bool = True) -> None:
    """Install the queue-time metric (runners/queue_time.py, which reports each batch's reason)
    and, when `bounded` (IMAGE_EMBED_BATCH_WAIT=bounded), check BentoML, then patch its
    dispatcher and service app factory. Idempotent; service.py calls it in every worker."""
    from _bentoml_impl.server.app import ServiceAppFactory
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    queue_time.install()
    if not bounded or getattr(CorkDispatcher.controller, "image_embed_batch_wait_patch", False):
        return
    check_bentoml()
    CorkDispatcher.controller = _controller(CorkDispatcher.controller)
    if not getattr(ServiceAppFactory.__init__, "image_embed_batch_wait_patch", False):
        ServiceAppFactory.__init__ = _bounding(ServiceAppFactory.__init__)
