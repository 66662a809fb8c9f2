"""runners/batching_wait.py: the bound on BentoML's deliberate batching wait, the optimizer
taught by queueing only, and the start-up check of BentoML's dispatcher."""

from __future__ import annotations

import asyncio
import time

import bentoml
import numpy as np
import pytest

from runners import batching_wait, queue_time
from runners.batching_wait import BOUND_ATTR, BentoMLChanged, check_bentoml, dispatch_reason, install

PER_ITEM_S, FIXED_S = 0.02, 0.01  # a simulated model: one forward of n items takes FIXED + n * PER_ITEM
BOUND_S = 0.005


@pytest.mark.parametrize(
    ("n", "w0", "wn", "wait", "reason"),
    [
        (8, 0.0, 0.0, 10.0, "full"),  # max_batch_size reached: at once, however long waiting pays
        (1, 0.0, 0.0, 0.0, "optimizer"),  # an idle runner that never queued: at once
        (1, 0.001, 0.001, 1.0, None),  # waiting "pays" (a long mean queue): hold ...
        (1, BOUND_S, BOUND_S, 1.0, "max_wait"),  # ... until the oldest has waited the bound
        (3, 0.004, 0.0, 1.0, None),
        (3, 0.0051, 0.0, 1.0, "max_wait"),  # the oldest's wait counts, not the newest's
        (4, 0.001, 0.001, 0.01, "optimizer"),  # BentoML's own rule: n * (wn + tick + a) > wait * 0.95
    ],
)
def test_dispatch_reason(n, w0, wn, wait, reason):
    assert dispatch_reason(n, 8, w0, wn, tick=0.001, a=0.0005, wait=wait, max_wait=BOUND_S) == reason


def test_the_optimizer_does_not_learn_from_the_dispatchers_own_hold():
    from bentoml._internal.marshal.dispatcher import Optimizer

    optimizer = batching_wait.queueing_optimizer_class(Optimizer)(max_latency=10.0)
    for _ in range(optimizer.N_SKIPPED_SAMPLE):  # BentoML skips its first samples
        optimizer.log_outbound(n=1, wait=0.0, duration=0.01)
    optimizer.held = 0.2
    optimizer.log_outbound(n=1, wait=0.25, duration=0.01)  # 0.05 s of queueing, 0.2 s held
    optimizer.log_outbound(n=1, wait=0.1, duration=0.01)  # held longer than it waited: 0
    assert [round(w, 6) for _, _, w in optimizer.o_stat] == [0.05, 0.0]


def test_the_installed_bentoml_has_the_shape_the_patch_needs():
    check_bentoml()


def test_a_changed_controller_stops_the_start(monkeypatch):
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    async def controller(self):  # a BentoML whose controller is not the one copied
        await asyncio.sleep(0)

    monkeypatch.setattr(CorkDispatcher, "controller", controller)
    with pytest.raises(BentoMLChanged, match=r"CorkDispatcher.controller changed.*IMAGE_EMBED_BATCH_WAIT=bentoml"):
        check_bentoml()


def test_a_changed_signature_stops_the_start(monkeypatch):
    from bentoml._internal.marshal.dispatcher import Optimizer

    monkeypatch.setattr(Optimizer, "log_outbound", lambda self, n, wait, duration, extra: None)
    with pytest.raises(BentoMLChanged, match=r"Optimizer.log_outbound\('self', 'n', 'wait', 'duration', 'extra'\)"):
        check_bentoml()


def test_overlapping_batches_stop_the_start(monkeypatch):
    from bentoml._internal.marshal import dispatcher

    def two_at_a_time(self, count):  # a BentoML that runs two batches at once
        self.sema = count + 1

    monkeypatch.setattr(dispatcher.NonBlockSema, "__init__", two_at_a_time)
    with pytest.raises(BentoMLChanged, match="batches could overlap"):
        check_bentoml()


def test_install_is_idempotent_and_off_leaves_bentoml_alone(monkeypatch):
    from _bentoml_impl.server.app import ServiceAppFactory
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    install()
    controller, init = CorkDispatcher.controller, ServiceAppFactory.__init__
    install()
    assert (CorkDispatcher.controller, ServiceAppFactory.__init__) == (controller, init)
    assert controller.image_embed_batch_wait_patch and init.image_embed_batch_wait_patch and init.image_embed_patch
    monkeypatch.setattr(CorkDispatcher, "controller", controller.__wrapped__)  # as if never installed
    install(bounded=False)
    assert CorkDispatcher.controller is controller.__wrapped__  # BentoML's own
    assert CorkDispatcher.outbound_call.image_embed_patch  # the queue-time metric is there either way


@bentoml.service(name="bounded_toy_runner")
class BoundedToyRunner:
    @bentoml.api(batchable=True, max_batch_size=8, max_latency_ms=60_000)
    def declared(self, x: np.ndarray) -> np.ndarray:
        return x

    @bentoml.api(batchable=True, max_batch_size=8, max_latency_ms=60_000)
    def undeclared(self, x: np.ndarray) -> np.ndarray:
        return x


batching_wait.declare(BoundedToyRunner.apis["declared"].func, 7.0)


def test_the_app_factory_bounds_the_dispatchers_of_declared_apis_only():
    from _bentoml_impl.server.app import ServiceAppFactory

    install()
    BoundedToyRunner.inject_config()
    factory = ServiceAppFactory(BoundedToyRunner, is_main=True)
    declared, undeclared = factory.dispatchers["declared"], factory.dispatchers["undeclared"]
    assert getattr(declared, BOUND_ATTR) == 0.007 and type(declared.optimizer).__name__ == "QueueingOptimizer"
    assert getattr(undeclared, BOUND_ATTR, None) is None and type(undeclared.optimizer).__name__ == "Optimizer"


def test_the_project_declares_each_runner_apis_bound():
    from runners.define import define_runner
    from models import get_spec

    spec = get_spec("clip")
    service = define_runner("clip", [spec])
    for api in ("encode_images", "encode_texts"):
        assert getattr(service.apis[api].func, BOUND_ATTR) == spec.batch_limits(api, "cpu").max_batch_wait_ms / 1000


async def _burst_then_lone(bounded: bool) -> tuple[list[float], float]:
    """A real CorkDispatcher over a simulated model: BentoML's calibration, a burst of 32
    clients, BentoML's periodic refresh of its estimates, then lone requests. Returns the lone
    requests' queue waits and the mean queue wait the optimizer learnt from the burst."""
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    waits: list[float] = []
    dispatcher = CorkDispatcher(20_000, 8, fallback=lambda: None, get_batch_size=lambda x: 1)
    if bounded:
        batching_wait.configure(dispatcher, BOUND_S)

    async def model(items):
        started = time.time()
        await asyncio.sleep(FIXED_S + PER_ITEM_S * len(items))
        waits.extend(started - enqueued for enqueued in items)
        return list(items)

    call = dispatcher(model)

    async def clients(count: int, requests: int) -> None:
        left = iter(range(requests))

        async def client() -> None:
            for _ in left:
                await call(time.time())  # the item is its enqueue time

        await asyncio.gather(*(client() for _ in range(count)))

    await clients(1, 12)  # BentoML's calibration batches
    await clients(32, 96)
    dispatcher.optimizer.trigger_refresh()  # BentoML refreshes at most every 5 s
    learnt = dispatcher.optimizer.wait
    waits.clear()
    await clients(1, 5)
    dispatcher.shutdown()
    return waits, learnt


@pytest.mark.slow
@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "bentoml"])
def test_after_a_burst_a_lone_request_is_held_at_most_the_bound(bounded):
    install()
    lone, learnt = asyncio.run(_burst_then_lone(bounded))
    assert learnt > 0.15  # the burst really queued: BentoML now believes waiting pays
    if bounded:
        assert max(lone) < 0.05, lone  # the bound (5 ms) and the poll, with room for a busy machine
    else:  # BentoML's own dispatcher: each lone request held for about 0.95 of what it learnt
        assert min(lone) > 0.1, lone


def test_shedding_is_unchanged(monkeypatch):
    """Queued requests that cannot finish within max_latency are still refused (fallback)."""
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    install()

    async def no_calibration(self):
        self.optimizer.o_a, self.optimizer.o_b = 0.05, 0.05

    monkeypatch.setattr(batching_wait, "_calibrate", no_calibration)

    async def scenario() -> list:
        dispatcher = CorkDispatcher(200, 2, fallback=lambda: "shed", get_batch_size=lambda x: 1)
        batching_wait.configure(dispatcher, BOUND_S)

        async def slow_model(items):
            await asyncio.sleep(0.4)
            return list(items)

        call = dispatcher(slow_model)
        first = asyncio.create_task(call(0))
        await asyncio.sleep(0.05)  # the first batch runs
        results = await asyncio.gather(first, *(call(i) for i in range(1, 6)))
        dispatcher.shutdown()
        return results

    results = asyncio.run(scenario())
    assert results[0] == 0 and results.count("shed") >= 4, results


def test_the_reason_reaches_the_queue_time_metric():
    from prometheus_client import REGISTRY

    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    install()
    labels = ("toy", "reasons")

    def count(reason: str) -> float:
        sample = {"runner": labels[0], "method": labels[1], "reason": reason}
        return REGISTRY.get_sample_value("image_embed_queue_seconds_count", sample) or 0.0

    async def scenario() -> None:
        dispatcher = CorkDispatcher(20_000, 8, fallback=lambda: None, get_batch_size=lambda x: 1)
        setattr(dispatcher, queue_time.LABELS_ATTR, labels)
        batching_wait.configure(dispatcher, BOUND_S)

        async def model(items):
            return list(items)

        call = dispatcher(model)
        for i in range(14):  # BentoML's calibration (about 10 batches), then the bounded controller
            await call(i)
        dispatcher.shutdown()

    before = {reason: count(reason) for reason in batching_wait.REASONS}
    asyncio.run(scenario())
    after = {reason: count(reason) - before[reason] for reason in batching_wait.REASONS}
    assert after["training"] >= 8 and after["training"] + after["optimizer"] == 14, after
    assert after["bentoml"] == 0
