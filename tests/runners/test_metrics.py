"""Runner-side metrics: inference time and items per batch reach Prometheus."""

from __future__ import annotations

import inspect

import numpy as np
from prometheus_client import REGISTRY

from runners.metrics import timed_batch


class FakeRunner:
    @timed_batch("fake", "encode")
    def encode(self, batch: np.ndarray) -> np.ndarray:
        """Docstring kept."""
        return batch * 2


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"runner": "fake", "method": "encode"}) or 0.0


def test_records_time_and_items():
    before_count, before_items = sample("image_embed_inference_seconds_count"), sample("image_embed_batch_items_sum")
    out = FakeRunner().encode(np.ones((5, 3)))
    assert out.shape == (5, 3) and out[0, 0] == 2
    assert sample("image_embed_inference_seconds_count") == before_count + 1
    assert sample("image_embed_batch_items_sum") == before_items + 5


def test_signature_and_doc_are_kept_for_bentoml():
    assert list(inspect.signature(FakeRunner.encode).parameters) == ["self", "batch"]
    assert FakeRunner.encode.__doc__ == "Docstring kept."
