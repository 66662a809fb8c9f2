"""The storage interface of one index, shared by both back ends.

    Storage            upsert, delete, get, iterate, count, binding (+ keys, check, stats, drop),
                       and each item's optional WebP thumbnail (for the UI)
    SqliteStore        sqlite_store.py: the embedded default, one SQLite file per index
    PgStore            pg_store.py: PostgreSQL + pgvector, shared by every server

Both validate an item the same way here (`prepare_items`), so a batch that one back end
accepts the other accepts too, and a migration between them never fails half-way on input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidItem
from .items import MAX_METADATA_BYTES, check_key, check_phash, check_source, check_thumbnail, normalize_metadata
from .labels import BrowsePage, ItemLabels, LabelFilter, LabelWrite
from .manifest import Binding

NORM_TOLERANCE = 1e-3


@dataclass
class Item:
    key: str
    id: int
    metadata: dict | None
    source: str | None
    vector: np.ndarray | None = None
    rating: int = 0
    hidden: bool = False
    tags: list[str] = field(default_factory=list)  # names
    phash: int | None = None  # 64-bit perceptual hash (iterate only: what a migration copies)


@dataclass
class CheckReport:
    count: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def prepare_vectors(binding: Binding, vectors) -> np.ndarray:
    """float32 (m, dim), finite, L2-normalized when the index is; or InvalidItem."""
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != binding.dim:
        raise InvalidItem(f"vectors must have {binding.dim} dimensions; got shape {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise InvalidItem("vectors must be finite (no NaN or infinity)")
    if binding.normalized:
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise InvalidItem("a zero vector cannot be normalized")
        arr = arr / norms
    return np.ascontiguousarray(arr, dtype=np.float32)


def prepare_items(binding: Binding, keys, vectors, metadata=None, sources=None, max_metadata_bytes=MAX_METADATA_BYTES):
    """(keys, vectors, metas, sources) checked as a whole batch, or InvalidItem."""
    keys = [check_key(k) for k in keys]
    vecs = prepare_vectors(binding, vectors) if keys else np.empty((0, binding.dim), np.float32)
    metas = [normalize_metadata(m, max_metadata_bytes) for m in (metadata if metadata is not None else [None] * len(keys))]
    srcs = [check_source(s) for s in (sources if sources is not None else [None] * len(keys))]
    if not (len(keys) == len(vecs) == len(metas) == len(srcs)):
        raise InvalidItem(f"{len(keys)} keys, {len(vecs)} vectors, {len(metas)} metadata, {len(srcs)} sources")
    return keys, vecs, metas, srcs


def prepare_phashes(phashes, n: int) -> list[int | None]:
    """One 64-bit pHash (an int, or None) per item; None for all when `phashes` is None."""
    if phashes is None:
        return [None] * n
    if len(phashes) != n:
        raise InvalidItem(f"{len(phashes)} perceptual hashes for {n} items")
    return [check_phash(h) for h in phashes]


def prepare_thumbnails(thumbnails, n: int) -> list[bytes | None]:
    """One checked WebP (or None) per item; None for all when `thumbnails` is None."""
    if thumbnails is None:
        return [None] * n
    if len(thumbnails) != n:
        raise InvalidItem(f"{len(thumbnails)} thumbnails for {n} items")
    return [check_thumbnail(t) for t in thumbnails]


def last_wins(keys: list[str]) -> list[int]:
    """Positions of the last occurrence of each key, in order (a batch upserting a key twice)."""
    last = {k: i for i, k in enumerate(keys)}
    return sorted(last.values())


def check_vectors(binding: Binding, vectors: np.ndarray, report: CheckReport) -> None:
    if not len(vectors):
        return
    if not np.all(np.isfinite(vectors)):
        report.problems.append("some stored vectors are not finite")
    elif binding.normalized:
        bad = int(np.sum(np.abs(np.linalg.norm(vectors, axis=1) - 1) > NORM_TOLERANCE))
        if bad:
            report.problems.append(f"{bad} vectors are not unit length")


class Storage(ABC):
    """One index's items: key -> (vector, metadata, source), durable when a write returns."""

    name: str
    binding: Binding

    @abstractmethod
    def upsert(self, keys, vectors, metadata=None, sources=None, thumbnails=None, *, phashes=None, labels=None) -> list[int]:
        """Insert or replace items by key (the last wins within a batch); returns their ids.
        An item replaced without a thumbnail (or pHash) loses its old one; its labels stay,
        except those `labels` (one ItemLabels or None per item) sets."""

    @abstractmethod
    def delete(self, keys) -> tuple[list[str], list[str]]:
        """Delete items by key; returns (deleted, missing)."""

    @abstractmethod
    def get(self, keys, with_vectors: bool = False) -> list[Item | None]:
        """The items of `keys`, None where absent."""

    @abstractmethod
    def thumbnail(self, key: str) -> bytes | None:
        """The WebP thumbnail stored with `key`, None when there is none; KeyNotFound when
        there is no such item."""

    # -- labels: ratings, tags, hidden (labels.py); each write durable when it returns ------
    @abstractmethod
    def set_rating(self, keys, rating: int) -> LabelWrite: ...

    @abstractmethod
    def tag_items(self, keys, add=(), remove=(), hidden: bool | None = None) -> LabelWrite:
        """Add tags by name (created when new), remove tags by name (unknown names are
        ignored), hide or unhide (None: unchanged), for every key, in one transaction."""

    @abstractmethod
    def tags(self) -> list[tuple[int, str, int]]:
        """(id, name, items carrying it), by id."""

    @abstractmethod
    def browse(self, f: LabelFilter, offset: int, limit: int) -> BrowsePage:
        """Items in key order (by code point), with their labels; TagNotFound for an unknown tag id."""

    @abstractmethod
    def phashes(self, include_hidden: bool = False) -> tuple[list[str], np.ndarray]:
        """(keys, uint64 hashes) of the items that have a perceptual hash."""

    @abstractmethod
    def iterate(self, batch: int = 10_000) -> Iterator[list[Item]]:
        """Every live item with its vector, in id order, `batch` at a time."""

    @property
    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def keys(self) -> list[str]: ...

    @abstractmethod
    def check(self) -> CheckReport:
        """Alignment: every key maps to exactly one stored row, every vector is sound."""

    @abstractmethod
    def stats(self) -> dict: ...

    @abstractmethod
    def close(self) -> None: ...

    def prepare_vectors(self, vectors) -> np.ndarray:
        return prepare_vectors(self.binding, vectors)

    def stored_vectors(self, vectors) -> np.ndarray:
        """The vectors as this back end stores them and scores with them (as float32)."""
        return self.prepare_vectors(vectors)
