"""Index runner: the search indexes, embedded (SQLite under the data directory, owned by this
process) or in PostgreSQL (IMAGE_EMBED_SEARCH_URL, shared with every other server).

Thin BentoML glue over the open indexes (search.backend.open_indexes). Vectors arrive already embedded (the gateway runs
CLIP); every call names its index and, for writes and vector searches, the binding
(model, dim, metric, normalization) its vectors come from, which the index's manifest
must match. Expected failures come back as {"error", "detail", "status"} so the gateway
can answer them with their own status and code.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import logging
import random
from typing import Any

import bentoml
import numpy as np

from runners.common import service_config
from runners.shutdown import OutliveGateway

logger = logging.getLogger("image_embed.runners.index")


def _answers(func):
    """Return a SearchError as data (status, code, detail) instead of a 500."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from search.errors import SearchError

        try:
            return func(*args, **kwargs)
        except SearchError as exc:
            return exc.to_json()

    return wrapper


def _binding(data: dict):
    from search.manifest import Binding

    return Binding.from_json(data)


def _labels(n: int, ratings, hidden, tags):
    """One ItemLabels per item from the optional per-item lists (None: nothing set), or None."""
    from search.errors import InvalidItem
    from search.labels import ItemLabels

    if ratings is None and hidden is None and tags is None:
        return None
    lists = [x if x is not None else [None] * n for x in (ratings, hidden, tags)]
    if any(len(x) != n for x in lists):
        raise InvalidItem(f"ratings, hidden and tags need one entry per item ({n})")
    return [ItemLabels(r, h, None if t is None else tuple(t)) for r, h, t in zip(*lists)]


def _filter(labels: dict | None):
    from search.labels import LabelFilter

    return LabelFilter.from_json(labels)


def _decoded(thumbnails: list[str | None] | None) -> list[bytes | None] | None:
    from search.errors import InvalidItem

    if thumbnails is None:
        return None
    try:
        return [None if t is None else base64.b64decode(t, validate=True) for t in thumbnails]
    except (binascii.Error, ValueError):
        raise InvalidItem("a thumbnail is not valid base64") from None


@bentoml.service(**service_config("index_runner"))
class IndexRunner(OutliveGateway):
    def __init__(self) -> None:
        from config.settings import load_settings
        from search.backend import open_indexes

        self.indexes = open_indexes(load_settings())
        self.opened = self.indexes.open_all()  # loads and checks every embedded index; reaches the database
        logger.info("indexes (%s): %s", self.indexes.describe(), self.opened or "none yet")

    @bentoml.on_shutdown
    def close(self) -> None:
        self.indexes.close()  # checkpoints the SQLite files; closes the PostgreSQL pool

    @bentoml.api
    @_answers
    def upsert(
        self,
        index: str,
        binding: dict[str, Any],
        keys: list[str],
        vectors: np.ndarray,
        metadata: list[dict[str, Any] | None],
        sources: list[str | None],
        thumbnails: list[str | None] | None = None,
        phashes: list[str | None] | None = None,
        ratings: list[int | None] | None = None,
        hidden: list[bool | None] | None = None,
        tags: list[list[str] | None] | None = None,
    ) -> dict:
        """Insert or replace items by key; returns once they are durable. Per item, optional:
        `thumbnails` (base64 WebP), `phashes` (16 hex digits), and the labels `ratings`,
        `hidden`, `tags` (names; null: that label unchanged), all in the item's transaction."""
        coll = self.indexes.get(index, _binding(binding), create=True)
        labels = _labels(len(keys), ratings, hidden, tags)
        ids = coll.upsert(keys, vectors, metadata, sources, _decoded(thumbnails), phashes=phashes, labels=labels)
        return {"count": len(ids), "total": coll.count}

    @bentoml.api
    @_answers
    def thumbnail(self, index: str, key: str) -> dict:
        """{"webp": base64 or null}; 404 when there is no such index or item."""
        data = self.indexes.get(index).thumbnail(key)
        return {"webp": None if data is None else base64.b64encode(data).decode("ascii")}

    @bentoml.api
    @_answers
    def delete(self, index: str, keys: list[str]) -> dict:
        deleted, missing = self.indexes.get(index).delete(keys)
        return {"deleted": deleted, "missing": missing}

    @bentoml.api
    @_answers
    def get_items(self, index: str, keys: list[str], with_vectors: bool = False) -> dict:
        items = self.indexes.get(index).get(keys, with_vectors)
        return {
            "items": [
                None
                if it is None
                else {
                    "key": it.key,
                    "metadata": it.metadata,
                    "source": it.source,
                    "rating": it.rating,
                    "hidden": it.hidden,
                    "tags": it.tags,
                    **({"vector": it.vector.tolist()} if with_vectors else {}),
                }
                for it in items
            ]
        }

    @bentoml.api
    @_answers
    def search(
        self,
        index: str,
        binding: dict[str, Any] | None,
        vectors: np.ndarray,
        top_k: int = 10,
        min_score: float | None = None,
        filter: dict[str, Any] | None = None,
        offset: int = 0,
        labels: dict[str, Any] | None = None,
    ) -> dict:
        """Best-first hits per query vector, from `offset` on. `binding`: the model the vectors
        come from, which must be the index's; None for vectors of the caller's own (only their
        dimension is checked). `labels`: min_rating, tag_ids, include_hidden
        (search.labels.LabelFilter), applied before top_k and offset."""
        coll = self.indexes.get(index, None if binding is None else _binding(binding))
        hits = coll.search(vectors, top_k, min_score, filter, offset=offset, labels=_filter(labels))
        return {"results": [[h.to_json() for h in per_query] for per_query in hits]}

    @bentoml.api
    @_answers
    def binding(self, index: str) -> dict:
        """What the index is bound to: {model, dim, metric, normalized}; 404 when there is none."""
        return dataclasses.asdict(self.indexes.get(index).store.binding)

    @bentoml.api
    @_answers
    def similar(
        self,
        index: str,
        key: str | None = None,
        top_k: int = 10,
        min_score: float | None = None,
        filter: dict[str, Any] | None = None,
        keys: list[str] | None = None,
        negative_keys: list[str] | None = None,
        offset: int = 0,
        labels: dict[str, Any] | None = None,
    ) -> dict:
        """Items like `key`, or like the normalized mean of `keys` minus `negative_keys`."""
        hits = self.indexes.get(index).similar(
            key, top_k, min_score, filter, keys=keys, negative_keys=negative_keys, offset=offset, labels=_filter(labels)
        )
        return {"results": [h.to_json() for h in hits]}

    @bentoml.api
    @_answers
    def drop_index(self, index: str) -> dict:
        """Remove an index and all its data."""
        from search.errors import IndexNotFound

        if not self.indexes.drop(index):
            raise IndexNotFound(f"there is no index named {index!r}")
        return {"dropped": index}

    @bentoml.api
    @_answers
    def duplicates(
        self, index: str, method: str = "clip", threshold: float = 0.95, max_distance: int = 5, limit: int = 100,
        include_hidden: bool = False, neighbors: int = 10,
    ) -> dict:
        """{"pairs", "groups"} by CLIP cosine or by perceptual hash (search.queries)."""
        return self.indexes.get(index).duplicates(method, threshold, max_distance, limit, neighbors, include_hidden)

    # -- labels: ratings, tags, hidden (search/labels.py) --------------------------------------
    @bentoml.api
    @_answers
    def browse(self, index: str, page: int = 1, per_page: int = 24, labels: dict[str, Any] | None = None) -> dict:
        """Items in key order with their labels: {"total", "items"}."""
        return self.indexes.get(index).browse(_filter(labels), page, per_page).to_json()

    @bentoml.api
    @_answers
    def set_rating(self, index: str, keys: list[str], rating: int) -> dict:
        written = self.indexes.get(index).set_rating(keys, rating)
        return {"updated": written.updated, "missing": written.missing}

    @bentoml.api
    @_answers
    def tag_items(
        self, index: str, keys: list[str], add: list[str] | None = None, remove: list[str] | None = None, hidden: bool | None = None
    ) -> dict:
        written = self.indexes.get(index).tag_items(keys, add or (), remove or (), hidden)
        return {"updated": written.updated, "missing": written.missing}

    @bentoml.api
    @_answers
    def tags(self, index: str) -> dict:
        return {"tags": [{"id": i, "name": n, "count": c} for i, n, c in self.indexes.get(index).tags()]}

    @bentoml.api
    @_answers
    def stats(self, index: str) -> dict:
        return self.indexes.get(index).stats()

    @bentoml.api
    @_answers
    def check(self, index: str, sample: int = 0) -> dict:
        """Structural alignment check, plus up to `sample` random items whose source is an
        http(s) URL, with their stored vectors (the gateway re-embeds them to compare)."""
        store = self.indexes.get(index)
        report = store.check()
        keys = store.keys() if sample else []
        random.shuffle(keys)
        picked = []
        for item in store.get(keys, with_vectors=False) if sample else []:
            if item is not None and item.source and item.source.startswith(("http://", "https://")):
                picked.append(item.key)
                if len(picked) >= sample:
                    break
        items = store.get(picked, with_vectors=True)
        return {
            "ok": report.ok,
            "count": report.count,
            "problems": report.problems,
            "sample": [{"key": it.key, "source": it.source, "vector": it.vector.tolist()} for it in items if it],
        }

    @bentoml.api
    def info(self) -> dict:
        """What is open, for /health."""
        from search.errors import SearchError

        try:
            indexes = {n: (self.opened.get(n) or "ok") for n in self.indexes.names()}
        except SearchError as exc:  # the database is down: /health says so
            indexes = {"(database)": f"{exc.code}: {exc.detail}"}
        described = self.indexes.describe()
        return {
            "key": "index",
            **described,
            "data_dir": described.get("data_dir", ""),
            "indexes": indexes,
            "approximate_kind": getattr(getattr(self.indexes, "ann_settings", None), "kind", "pgvector-hnsw"),
        }
