"""Runner-side Prometheus metrics: queue time, time spent in the model, items per forward.

BentoML already exports, per runner API, how many requests each batch merged
(`bentoml_service_adaptive_batch_size`) and the request duration seen by the runner
(`bentoml_service_request_duration_seconds`, queueing included). These add what only the
runner knows:

    image_embed_queue_seconds{runner,method,reason}  one request's wait in the runner's
                                                   batching queue before its batch started, by
                                                   why the batch went (runners/queue_time.py)
    image_embed_inference_seconds{runner,method}   one forward of one batch
    image_embed_batch_items{runner,method}         images/texts in that forward

`runner` is the model runner without `_runner` (clip, dino, internvit, person, face, caption),
`method` its API (encode_images, encode_texts, detect, ...). prometheus_client is imported on
first use: BentoML sets PROMETHEUS_MULTIPROC_DIR in a worker after importing the service
module, and metrics created earlier would never reach /metrics.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_METRICS: dict[str, Any] = {}
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
QUEUE_BUCKETS = (0.001, 0.0025, *SECONDS_BUCKETS)  # an idle runner starts a batch within ~1 ms
ITEM_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _metrics() -> dict[str, Any]:
    if not _METRICS:
        from prometheus_client import Histogram

        _METRICS["seconds"] = Histogram(
            "image_embed_inference_seconds", "Model time of one runner batch", ["runner", "method"],
            buckets=SECONDS_BUCKETS,
        )
        _METRICS["items"] = Histogram(
            "image_embed_batch_items", "Items in one runner batch", ["runner", "method"], buckets=ITEM_BUCKETS
        )
        _METRICS["queue"] = Histogram(
            "image_embed_queue_seconds", "Wait of one request in a runner's queue before its batch started",
            ["runner", "method", "reason"], buckets=QUEUE_BUCKETS,
        )
    return _METRICS


def queue_histogram() -> Any:
    """image_embed_queue_seconds (observed by runners/queue_time.py)."""
    return _metrics()["queue"]


def timed_batch(runner: str, method: str) -> Callable[[F], F]:
    """Record inference time and batch size of a batchable runner API (first arg = the batch)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(self: Any, batch: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = func(self, batch, *args, **kwargs)
            metrics = _metrics()
            metrics["seconds"].labels(runner, method).observe(time.perf_counter() - started)
            metrics["items"].labels(runner, method).observe(len(batch))
            return result

        return wrapper  # type: ignore[return-value]

    return decorate
