"""Prometheus metrics of the runners' own, beside BentoML's.

BentoML's `bentoml_service_adaptive_batch_size` counts the *requests* merged into one batch; a
request to InternViT carries many views, so the number of *images* per forward pass is recorded
here: `image_embed_forward_images{runner, api}` (a histogram, in GET /metrics).
"""

from __future__ import annotations

from functools import lru_cache

BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@lru_cache(maxsize=None)
def forward_images_histogram():
    """Created on first use, inside the runner process (BentoML has set up multiprocess metrics)."""
    import bentoml

    return bentoml.metrics.Histogram(
        name="image_embed_forward_images",
        documentation="Images (views) per model forward pass",
        labelnames=["runner", "api"],
        buckets=BUCKETS,
    )


def observe_forward(runner: str, api: str, n_images: int) -> None:
    forward_images_histogram().labels(runner=runner, api=api).observe(n_images)
