"""Queue time of runner requests: how long each waited before its batch started.

    image_embed_queue_seconds{runner,method,reason}

BentoML (1.4.39) batches a batchable API in a `CorkDispatcher`
(bentoml/_internal/marshal/dispatcher.py): each request becomes a `Job` stamped with
`enqueue_time` (time.time()) and waits in the dispatcher's queue until the dispatcher takes
it into a batch and runs `outbound_call(jobs)`. No public hook reports that wait, so two
small, idempotent patches do, installed by `install()` (service.py calls it in every worker,
before BentoML builds the app):

1. `ServiceAppFactory.__init__` (which creates one dispatcher per batchable API) labels each
   dispatcher with its runner (the service name without `_runner`) and API name.
2. `CorkDispatcher.outbound_call` first observes `now - job.enqueue_time` for every job of the
   batch (part of a split request keeps its request's enqueue time), then runs the batch
   unchanged. Unlabelled dispatchers are left alone. `reason` says why the batch went: the
   bounded controller of runners/batching_wait.py passes it (`dispatch_reason=`: full,
   optimizer, max_wait); BentoML's calibration batches are `training`, and batches of
   BentoML's own controller `bentoml`.

Requests the dispatcher sheds (503: they could not finish within `max_latency_ms`) never
start a batch and are not observed; BentoML's request counts show them.
tests/runners/test_queue_time.py checks both patch points against the installed BentoML.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

from runners.metrics import queue_histogram

LABELS_ATTR = "_image_embed_labels"


def runner_label(service_name: str) -> str:
    return service_name.removesuffix("_runner")


def observe_jobs(labels: tuple[str, str], jobs: Sequence[Any], reason: str, now: float | None = None) -> None:
    """Record each job's wait (seconds since it was enqueued; never negative)."""
    now = time.time() if now is None else now
    child = queue_histogram().labels(*labels, reason)
    for job in jobs:
        child.observe(max(0.0, now - job.enqueue_time))


def label_dispatchers(factory: Any) -> None:
    """Label the dispatchers of a ServiceAppFactory with (runner, api)."""
    runner = runner_label(factory.service.name)
    for api, dispatcher in factory.dispatchers.items():
        setattr(dispatcher, LABELS_ATTR, (runner, api))


def _observing(original):
    @functools.wraps(original)
    async def outbound_call(self, inputs_info, training=False, dispatch_reason=None):
        labels = getattr(self, LABELS_ATTR, None)
        if labels is not None:
            observe_jobs(labels, inputs_info, "training" if training else dispatch_reason or "bentoml")
        return await original(self, inputs_info, training)

    outbound_call.image_embed_patch = True
    return outbound_call


def _labelling(original):
    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        label_dispatchers(self)

    __init__.image_embed_patch = True
    return __init__


def install() -> None:
    """Patch BentoML's dispatcher and service app factory (idempotent)."""
    from _bentoml_impl.server.app import ServiceAppFactory
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    if not getattr(CorkDispatcher.outbound_call, "image_embed_patch", False):
        CorkDispatcher.outbound_call = _observing(CorkDispatcher.outbound_call)
    if not getattr(ServiceAppFactory.__init__, "image_embed_patch", False):
        ServiceAppFactory.__init__ = _labelling(ServiceAppFactory.__init__)
