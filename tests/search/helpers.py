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


def clustered(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """n unit vectors around n / 50 random centres (neighbours exist, as in real embeddings)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(n // 50, 2), dim))
    x = centers[rng.integers(0, len(centers), n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
