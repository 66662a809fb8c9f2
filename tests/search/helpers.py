"""Shared helpers of the search engine tests: small bindings, reproducible vectors."""

from __future__ import annotations

import numpy as np

from search.manifest import Binding

DIM = 8
BINDING = Binding(model="test-model:0", dim=DIM)


def vector_for(key: str, dim: int = DIM) -> np.ndarray:
    """A unit vector that depends only on the key (so a test can recompute it)."""
    seed = int.from_bytes(key.encode()[:16].ljust(16, b"\0"), "little") ^ len(key)
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def vectors_for(keys, dim: int = DIM) -> np.ndarray:
    return np.stack([vector_for(k, dim) for k in keys]) if keys else np.empty((0, dim), np.float32)
