"""A child process for test_full_disk.py, run inside its own mount namespace on a small tmpfs:
fills an embedded index until the filesystem is full, checks that nothing acknowledged is
lost, frees space, writes again, reopens, and prints what it saw as one JSON line.

    python -m tests.search.full_disk_child <tmpfs dir> <dim>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from search.errors import InsufficientStorage
from search.manifest import Binding
from tests.search.backends import open_indexes
from tests.search.helpers import vectors_for

BATCH = 50


def verify(ix, acked: list[str], dim: int) -> None:
    assert ix.count == len(acked), (ix.count, len(acked))
    items = ix.get(acked, with_vectors=True)
    expected = ix.store.stored_vectors(vectors_for(acked, dim))
    assert all(it is not None for it in items), "acknowledged items were lost"
    assert np.array_equal(np.stack([it.vector for it in items]), expected), "an item lost its own vector"
    (hits,) = ix.search(vectors_for(acked[-1:], dim), top_k=1)
    assert hits[0].key == acked[-1]
    report = ix.check()
    assert report.ok, report.problems


def main() -> None:
    place, dim = Path(sys.argv[1]), int(sys.argv[2])
    binding = Binding(model="m", dim=dim)
    filler = place / "filler"
    filler.write_bytes(b"\1" * (1 << 20))  # what the test frees later
    catalog = open_indexes(str(place))
    ix = catalog.get("ix", binding, create=True)
    acked: list[str] = []
    error = None
    while error is None:
        keys = [f"k{len(acked) + i}" for i in range(BATCH)]
        try:
            ix.upsert(keys, vectors_for(keys, dim), [{"n": 1}] * BATCH)
            acked += keys
        except InsufficientStorage as exc:
            error = exc
    verify(ix, acked, dim)  # the failed write left nothing behind, the index works on a full disk
    filler.unlink()
    ix.upsert(keys, vectors_for(keys, dim), [{"n": 1}] * BATCH)  # the same call, once there is room
    acked += keys
    verify(ix, acked, dim)
    catalog.close()
    catalog = open_indexes(str(place))
    verify(catalog.get("ix", binding), acked, dim)
    catalog.close()
    print(json.dumps({"status": error.status, "code": error.code, "detail": error.detail, "acked": len(acked)}))


if __name__ == "__main__":
    main()
