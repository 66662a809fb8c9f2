"""The in-memory rows of one index: the one place where a key meets its vector.

Row r holds ids[r], vectors[r], keys[r], metas[r], sources[r] and alive[r], written
together and never changed afterwards except for the tombstone flag. Ids are allocated
monotonically and never reused; rows are appended in id order, so `ids` is strictly
increasing and an id's row is a binary search away. An upsert of an existing key
tombstones the old row and appends a new one (a new id), so nothing that indexes ids
(the approximate index) ever points at a vector that changed under it.

Writers hold the store's write lock. Readers take `view()` once, without a lock: the
arrays of rows below `view.n` are immutable (growth and compaction build new arrays),
so a reader can never pair one row's key with another row's vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROWTH = 1.5
MIN_CAPACITY = 1024


@dataclass(frozen=True)
class View:
    n: int
    ids: np.ndarray  # int64, rows [0, n) strictly increasing
    vectors: np.ndarray  # float32 (capacity, dim)
    alive: np.ndarray  # bool; tombstones flip in place
    keys: list
    metas: list
    sources: list

    def rows_of_ids(self, ids: np.ndarray) -> np.ndarray:
        """Rows of `ids` in this view, -1 where an id is absent (never appended, or compacted away)."""
        ids = np.asarray(ids, dtype=np.int64)
        known = self.ids[: self.n]
        if self.n == 0:
            return np.full(len(ids), -1, np.int64)
        rows = np.minimum(np.searchsorted(known, ids), self.n - 1)
        return np.where(known[rows] == ids, rows, -1)

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.alive[: self.n])


class Table:
    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.ids = np.empty(0, np.int64)
        self.vectors = np.empty((0, dim), np.float32)
        self.alive = np.empty(0, bool)
        self.keys: list[str] = []
        self.metas: list[dict | None] = []
        self.sources: list[str | None] = []
        self.key_to_row: dict[str, int] = {}
        self.next_id = 0  # ids below it were allocated once, and are never handed out again
        self.lsn = 0  # the last log record applied
        self._view = self._make_view()

    # -- reading ---------------------------------------------------------------------------
    def view(self) -> View:
        return self._view

    @property
    def count(self) -> int:
        return len(self.key_to_row)

    def row_of(self, key: str) -> int | None:
        return self.key_to_row.get(key)

    # -- writing (under the store's write lock) --------------------------------------------
    def append(self, ids, vectors, keys, metas, sources) -> None:
        """Append rows (ids ascending, above every existing id); tombstone replaced keys."""
        m = len(keys)
        if m == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        if self.n and ids[0] <= self.ids[self.n - 1] or np.any(np.diff(ids) <= 0):
            raise ValueError("ids must increase")  # the store's own bug: never reached from input
        self._reserve(self.n + m)
        start = self.n
        self.ids[start : start + m] = ids
        self.vectors[start : start + m] = vectors
        self.alive[start : start + m] = True
        self.keys.extend(keys)
        self.metas.extend(metas)
        self.sources.extend(sources)
        for offset, key in enumerate(keys):
            old = self.key_to_row.get(key)
            if old is not None:
                self.alive[old] = False
            self.key_to_row[key] = start + offset
        self.n = start + m
        self.next_id = max(self.next_id, int(ids[-1]) + 1)
        self._view = self._make_view()

    def tombstone(self, key: str, id_: int | None = None) -> bool:
        """Delete `key` (only if its live id is `id_`, when given). True if it was there."""
        row = self.key_to_row.get(key)
        if row is None or (id_ is not None and int(self.ids[row]) != id_):
            return False
        self.alive[row] = False
        del self.key_to_row[key]
        return True

    def compact(self) -> None:
        """Drop tombstoned rows (ids stay what they were; only row numbers change)."""
        live = np.flatnonzero(self.alive[: self.n])
        keys = [self.keys[r] for r in live]
        self.load(
            self.ids[live], self.vectors[live], keys, [self.metas[r] for r in live], [self.sources[r] for r in live]
        )

    def load(self, ids, vectors, keys, metas, sources) -> None:
        """Replace everything with these live rows (compaction)."""
        m = len(keys)
        cap = max(MIN_CAPACITY, int(m * GROWTH))
        ids_cap = np.empty(cap, np.int64)
        vectors_cap = np.empty((cap, self.dim), np.float32)
        ids_cap[:m] = ids
        vectors_cap[:m] = vectors
        self.adopt(ids_cap, vectors_cap, m, keys, metas, sources)

    def adopt(self, ids, vectors, m: int, keys, metas, sources) -> None:
        """Take over arrays whose first `m` rows are the live rows (a snapshot being loaded)."""
        if not (len(keys) == len(metas) == len(sources) == m <= len(ids) == len(vectors)):
            raise ValueError("rows of different lengths")
        if m and np.any(np.diff(ids[:m]) <= 0):
            raise ValueError("ids are not strictly increasing")
        key_to_row = {k: i for i, k in enumerate(keys)}
        if len(key_to_row) != m:
            raise ValueError("duplicate keys among live rows")
        self.ids, self.vectors = ids, vectors
        self.alive = np.zeros(len(ids), bool)
        self.alive[:m] = True
        self.keys, self.metas, self.sources = list(keys), list(metas), list(sources)
        self.key_to_row = key_to_row
        self.n = m
        if m:
            self.next_id = max(self.next_id, int(self.ids[m - 1]) + 1)
        self._view = self._make_view()

    def _reserve(self, size: int) -> None:
        if size <= len(self.ids):
            return
        cap = max(MIN_CAPACITY, int(size * GROWTH))
        ids = np.empty(cap, np.int64)
        vectors = np.empty((cap, self.dim), np.float32)
        alive = np.zeros(cap, bool)
        ids[: self.n] = self.ids[: self.n]
        vectors[: self.n] = self.vectors[: self.n]
        alive[: self.n] = self.alive[: self.n]
        # New arrays, not resized ones: readers holding the old view keep valid rows.
        self.ids, self.vectors, self.alive = ids, vectors, alive

    def _make_view(self) -> View:
        return View(self.n, self.ids, self.vectors, self.alive, self.keys, self.metas, self.sources)
