"""Queue time: each request's wait in BentoML's batching dispatcher reaches
image_embed_queue_seconds, through the patches in runners/queue_time.py."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import bentoml
import numpy as np
from prometheus_client import REGISTRY

from runners.queue_time import LABELS_ATTR, install, observe_jobs, runner_label

HOLD_S = 0.2


def sample(name: str, runner: str, method: str, reason: str | None = None) -> float:
    """A sample of image_embed_queue_seconds, summed over the reasons unless one is named."""
    return sum(
        s.value
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == name and s.labels.get("runner") == runner and s.labels.get("method") == method
        and reason in (None, s.labels.get("reason"))
    )


def test_observe_jobs_records_each_wait():
    before = sample("image_embed_queue_seconds_count", "unit", "waits")
    before_sum = sample("image_embed_queue_seconds_sum", "unit", "waits")
    jobs = [SimpleNamespace(enqueue_time=t) for t in (100.0, 99.5, 100.5)]  # one "from the future"
    observe_jobs(("unit", "waits"), jobs, "full", now=100.25)
    assert sample("image_embed_queue_seconds_count", "unit", "waits") == before + 3
    assert sample("image_embed_queue_seconds_count", "unit", "waits", reason="full") == before + 3
    assert abs(sample("image_embed_queue_seconds_sum", "unit", "waits") - before_sum - (0.25 + 0.75 + 0.0)) < 1e-9


def test_runner_label():
    assert runner_label("clip_runner") == "clip"
    assert runner_label("index_runner") == "index"
    assert runner_label("image_embed") == "image_embed"


def test_install_is_idempotent():
    from _bentoml_impl.server.app import ServiceAppFactory
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    install()
    outbound, init = CorkDispatcher.outbound_call, ServiceAppFactory.__init__
    install()
    assert CorkDispatcher.outbound_call is outbound and ServiceAppFactory.__init__ is init
    assert outbound.image_embed_patch and init.image_embed_patch


@bentoml.service(name="toy_runner")
class ToyRunner:
    @bentoml.api(batchable=True, max_batch_size=8, max_latency_ms=60_000)
    def encode(self, x: np.ndarray) -> np.ndarray:
        return x

    @bentoml.api
    def info(self) -> dict:
        return {}


def test_the_app_factory_labels_each_batching_dispatcher():
    from _bentoml_impl.server.app import ServiceAppFactory

    install()
    ToyRunner.inject_config()
    factory = ServiceAppFactory(ToyRunner, is_main=True)
    assert set(factory.dispatchers) == {"encode"}  # `info` is not batchable
    assert getattr(factory.dispatchers["encode"], LABELS_ATTR) == ("toy", "encode")


def test_a_real_dispatcher_reports_the_wait_of_every_request():
    """BentoML's CorkDispatcher with a batch function that is held busy: the requests queued
    behind it are observed once each, with at least the time they were held."""
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    install()
    n = 6
    labels = ("toy", "held")
    before = sample("image_embed_queue_seconds_count", *labels)
    before_sum = sample("image_embed_queue_seconds_sum", *labels)

    async def scenario() -> list:
        release = asyncio.Event()
        batches: list[int] = []

        async def batch_fn(items):
            batches.append(len(items))
            await release.wait()
            return [x * 2 for x in items]

        dispatcher = CorkDispatcher(60_000, 8, fallback=lambda: None, get_batch_size=lambda x: 1)
        setattr(dispatcher, LABELS_ATTR, labels)
        call = dispatcher(batch_fn)
        first = asyncio.create_task(call(0))
        while not batches:  # the first request's batch is running (and held)
            await asyncio.sleep(0.001)
        rest = [asyncio.create_task(call(i)) for i in range(1, n)]
        while len(dispatcher._queue) < n - 1:  # all the others are queued behind it
            await asyncio.sleep(0.001)
        await asyncio.sleep(HOLD_S)
        release.set()
        results = await asyncio.gather(first, *rest)
        dispatcher.shutdown()
        return results

    assert asyncio.run(scenario()) == [2 * i for i in range(n)]
    assert sample("image_embed_queue_seconds_count", *labels) == before + n
    # n - 1 requests were queued for at least HOLD_S before their batch could start.
    assert sample("image_embed_queue_seconds_sum", *labels) - before_sum >= (n - 1) * HOLD_S


def test_an_unlabelled_dispatcher_is_left_alone():
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    install()
    before = sample("image_embed_queue_seconds_count", "toy", "none")

    async def scenario():
        async def batch_fn(items):
            return list(items)

        dispatcher = CorkDispatcher(60_000, 8, fallback=lambda: None, get_batch_size=lambda x: 1)
        result = await dispatcher(batch_fn)(5)
        dispatcher.shutdown()
        return result

    assert asyncio.run(scenario()) == 5
    assert sample("image_embed_queue_seconds_count", "toy", "none") == before
