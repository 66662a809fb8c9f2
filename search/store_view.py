"""What a search sees of the embedded store at one moment (`View`), and the few things about
the rows it keeps in memory, all numpy, none of it per-row Python objects:

    alive     one byte per id: live or not (ids are never reused; a replaced or deleted id
              is dead for good), flipped to False in place after the commit that kills it
    stored    the vector file's rows, memory-mapped (vector_file.py)
    hot       float32 copies of the newest rows, ids [hot.start, next_id): the ones the
              approximate index does not cover yet (scanned exactly by every search) or, in a
              small index, all of them; bounded (StoreSettings.hot_bytes), so scans of them
              need no float16 decoding
    IdFilter  the ids a label filter keeps (sorted id arrays, from the label mirror)

Keys, metadata and labels are not here: they are read from SQLite for the hits only.

A view is immutable except for `alive` flips; the store publishes a new one after each
commit. Readers take one and check, in the same SQLite read transaction that reads keys and
metadata, that the database is at the view's `lsn` (sqlite_store.py `consistent_read`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOT_GROWTH = 1.5
HOT_MIN_ROWS = 1024


@dataclass(frozen=True)
class HotRows:
    start: int
    n: int
    vectors: np.ndarray  # float32 (capacity, dim); rows below n are never changed

    @property
    def stop(self) -> int:
        return self.start + self.n

    @classmethod
    def empty(cls, at: int, dim: int) -> "HotRows":
        return cls(at, 0, np.empty((0, dim), np.float32))

    @classmethod
    def of(cls, start: int, rows: np.ndarray) -> "HotRows":
        cap = max(HOT_MIN_ROWS, int(len(rows) * HOT_GROWTH))
        vectors = np.empty((cap, rows.shape[1]), np.float32)
        vectors[: len(rows)] = rows
        return cls(start, len(rows), vectors)

    def appended(self, first_id: int, rows: np.ndarray, max_rows: int) -> "HotRows":
        """These rows (float32, ids from first_id on) added; past max_rows, nothing is kept
        (the file serves them until an index build moves the start up)."""
        m, dim = len(rows), rows.shape[1]
        if first_id != self.stop or self.n + m > max_rows:
            return HotRows.empty(first_id + m, dim)
        need = self.n + m
        vectors = self.vectors
        if need > len(vectors):  # a new array: readers of older views keep the old one
            vectors = np.empty((max(HOT_MIN_ROWS, int(need * HOT_GROWTH)), dim), np.float32)
            vectors[: self.n] = self.vectors[: self.n]
        vectors[self.n : need] = rows  # above every older view's n: nobody reads these yet
        return HotRows(self.start, need, vectors)


def member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of `ids` are in `sorted_ids`."""
    if not len(sorted_ids):
        return np.zeros(len(ids), bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return sorted_ids[pos] == ids


@dataclass(frozen=True)
class IdFilter:
    """The ids a label filter keeps: only `allowed`, or all but `excluded` (sorted int64)."""

    allowed: np.ndarray | None = None
    excluded: np.ndarray | None = None

    @property
    def selective(self) -> bool:
        return self.allowed is not None

    def keep(self, ids: np.ndarray) -> np.ndarray:
        if self.allowed is not None:
            return member(self.allowed, ids)
        if self.excluded is not None:
            return ~member(self.excluded, ids)
        return np.ones(len(ids), bool)


@dataclass(frozen=True)
class View:
    lsn: int  # the database's change counter this view reflects
    next_id: int  # ids below it were allocated; their rows are committed and mapped
    count: int  # live items
    alive: np.ndarray  # bool by id (valid below next_id)
    stored: np.ndarray  # the vector file's rows as stored (valid below next_id)
    hot: HotRows  # float32 rows [hot.start, next_id)
    file: object  # the VectorFile, for long sequential reads

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """float32 vectors of `ids` (all below next_id), in that order."""
        ids = np.asarray(ids, np.int64)
        hot = ids >= self.hot.start
        if hot.all():
            return self.hot.vectors[ids - self.hot.start]
        out = np.empty((len(ids), self.stored.shape[1]), np.float32)
        out[~hot] = self.stored[ids[~hot]]
        if hot.any():
            out[hot] = self.hot.vectors[ids[hot] - self.hot.start]
        return out

    def block(self, start: int, stop: int) -> np.ndarray:
        """float32 rows [start, stop) (below next_id)."""
        split = min(max(start, self.hot.start), stop)
        cold = self.stored[start:split].astype(np.float32)
        hot = self.hot.vectors[split - self.hot.start : stop - self.hot.start]
        return hot if split == start else cold if split == stop else np.concatenate([cold, hot])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Like `block`, by sequential file reads (long scans of cold data: builds, checks)."""
        if start >= self.hot.start:
            return self.block(start, stop)
        return self.file.read(start, stop).astype(np.float32)

    def is_alive(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, np.int64)
        return (ids >= 0) & (ids < self.next_id) & self.alive[np.clip(ids, 0, max(self.next_id - 1, 0))]

    def live_ids(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.next_id if stop is None else min(stop, self.next_id)
        return start + np.flatnonzero(self.alive[start:stop])
