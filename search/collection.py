"""One searchable embedded index: the SQLite store and its vector file, plus exact and
approximate search.

Search is exact (a scan of the stored vectors) up to `exact_max` live items. Above it, an
approximate index proposes candidates, the items added since it was built (the "tail", ids
from `ann.covers` on) are scanned exactly, and every candidate is re-ranked with its stored
vector (candidates.py). The hits' keys and metadata are then read from SQLite by id, in a
read transaction that sees the database exactly as the view the scores came from
(SqliteStore.consistent_read): a result can never show one item's key with another's score.
Building, extending or retraining runs on a background thread and is swapped in atomically
when done; searches and writes never wait for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from . import candidates
from . import sqlite_reads as reads
from .ann import AnnSettings, ApproxIndex
from .errors import InvalidItem
from .labels import LabelFilter
from .queries import Hit, SearchIndex, check_filter, check_page, matches
from .sqlite_store import SqliteStore

logger = logging.getLogger("image_embed.search.collection")

QUERY_BATCH = 256
AMONG_MAX = 100_000  # a label filter's ids up to which a metadata filter reads just their rows


class Collection(SearchIndex):
    backend = "sqlite"

    def __init__(self, store: SqliteStore, settings: AnnSettings, submit: Callable[[Callable[[], None]], Future]) -> None:
        self.store, self.settings, self._submit = store, settings, submit
        self.name = store.name
        self.ann: ApproxIndex | None = ApproxIndex.load(store.folder, settings, store.next_id)
        self.store.keep_hot_from(self.ann.covers if self.ann is not None else 0)
        self._pending: dict[str, Future] = {}
        self._pending_lock = threading.Lock()
        self.last_build_error: str | None = None
        self._failed_at: int | None = None  # item count when a build last failed
        self.maintain()

    # -- writes --------------------------------------------------------------------------
    def upsert(self, keys, vectors, metadata=None, sources=None, thumbnails=None, *, phashes=None, labels=None) -> list[int]:
        ids = self.store.upsert(keys, vectors, metadata, sources, thumbnails, phashes=phashes, labels=labels)
        self.maintain()
        return ids

    def delete(self, keys) -> tuple[list[str], list[str]]:
        result = self.store.delete(keys)
        self.maintain()
        return result

    # -- search --------------------------------------------------------------------------
    def uses_ann(self) -> bool:
        return self.ann is not None and self.store.count > self.settings.exact_max

    def search(
        self, queries, top_k: int = 10, min_score: float | None = None, where: dict | None = None, exclude=None, offset: int = 0,
        labels: LabelFilter | None = None,
    ):
        """Best-first hits for each query vector, from `offset` on: list (one per query) of lists of Hit.
        `labels` (default: hidden items left out) applies before top_k and offset."""
        depth = check_page(top_k, offset)
        where = check_filter(where)
        qs = self.store.prepare_vectors(queries)
        excluded = [set() for _ in range(len(qs))] if exclude is None else [set(e or ()) for e in exclude]
        want = depth + max((len(e) for e in excluded), default=0)

        def run(view, id_filter, conn) -> list[list[Hit]]:
            cache: dict[int, tuple] = {}  # id -> (key, metadata), read once per search
            out = []
            for start in range(0, len(qs), QUERY_BATCH):
                found = self._candidates(view, id_filter, conn, qs[start : start + QUERY_BATCH], want, where, cache)
                cache.update(reads.by_ids(conn, {int(i) for ids, _ in found for i in ids[:want]} - cache.keys()))
                for i, (ids, scores) in enumerate(found):
                    hits = []
                    for id_, s in zip(ids, scores):
                        key, meta = cache[int(id_)]
                        if key in excluded[start + i] or (min_score is not None and s < min_score):
                            continue
                        hits.append(Hit(key, float(s), meta))
                        if len(hits) == depth:
                            break
                    out.append(hits[offset:])
            return out

        return self.store.consistent_read(run, labels or LabelFilter())

    def _candidates(self, view, id_filter, conn, qs: np.ndarray, k: int, where: dict | None, cache: dict):
        """(ids, scores) per query, best first, exact scores from stored vectors; only live ids
        that match `where` and that the label filter keeps."""
        ann = self.ann
        if ann is None or view.count <= self.settings.exact_max:
            allowed = self._allowed(view, id_filter, conn, where)
            return candidates.exact(view, qs, k, allowed, id_filter if allowed is None else None)
        selective = bool(where) or (id_filter is not None and id_filter.selective)
        kc = self.settings.candidates_for(view.count, k) * (4 if selective else 1)
        if id_filter is not None and id_filter.excluded is not None:
            kc += min(len(id_filter.excluded), kc)  # hidden ones may take some of the places
        out = []
        for q, (ids, scores) in zip(qs, candidates.approximate(view, ann, qs, kc, id_filter)):
            if where:
                cache.update(reads.by_ids(conn, {int(i) for i in ids} - cache.keys()))
                keep = np.fromiter((matches(cache[int(i)][1], where) for i in ids), bool, len(ids))
                ids, scores = ids[keep], scores[keep]
            if selective and len(ids) < k:  # the filter is selective: scan what it keeps, exactly
                allowed = self._allowed(view, id_filter, conn, where)
                ids, scores = candidates.exact(view, q[None], k, allowed, id_filter if allowed is None else None)[0]
            out.append((ids[:k], scores[:k]))
        return out

    @staticmethod
    def _allowed(view, id_filter, conn, where: dict | None) -> np.ndarray | None:
        """The live ids a selective label filter and `where` keep; None: every live id (the
        caller applies a filter that only excludes)."""
        ids = id_filter.allowed if id_filter is not None and id_filter.selective else None
        if where:
            among = ids if ids is not None and len(ids) <= AMONG_MAX else None
            matched = reads.where_ids(conn, where, among)
            ids = matched if ids is None or among is not None else np.intersect1d(ids, matched)
        if ids is None:
            return None
        ids = ids[view.is_alive(ids)]
        return ids if id_filter is None else ids[id_filter.keep(ids)]

    # -- duplicates ----------------------------------------------------------------------
    def clip_duplicates(self, threshold: float = 0.95, limit: int = 1000, neighbors: int = 10, include_hidden: bool = False) -> list[dict]:
        """Pairs of live items with similarity >= threshold, best first (each pair once);
        hidden items only with `include_hidden`.

        Every item is a query for its `neighbors` nearest items: exact below `exact_max`,
        approximate with exact re-ranking above it.
        """
        if not -1.0 <= threshold <= 1.0:
            raise InvalidItem("threshold must be between -1 and 1")

        def run(view, id_filter, conn) -> list[dict]:
            live = view.live_ids()
            if id_filter is not None:
                live = live[id_filter.keep(live)]
            pairs: dict[tuple[int, int], float] = {}
            for start in range(0, len(live), QUERY_BATCH):
                ids = live[start : start + QUERY_BATCH]
                found = self._candidates(view, id_filter, conn, view.rows(ids), neighbors + 1, None, {})
                for r, (cand, scores) in zip(ids, found):
                    for c, s in zip(cand, scores):
                        if c == r or s < threshold:
                            continue
                        pair = (int(min(r, c)), int(max(r, c)))
                        pairs[pair] = max(pairs.get(pair, -2.0), float(s))
            keys = reads.by_ids(conn, {i for p in pairs for i in p})
            named: dict[tuple[str, str], float] = {}
            for (a, b), s in pairs.items():
                if a in keys and b in keys:
                    ka, kb = sorted((keys[a][0], keys[b][0]))
                    named[(ka, kb)] = max(named.get((ka, kb), -2.0), s)
            best = sorted(named.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
            return [{"a": a, "b": b, "score": s} for (a, b), s in best]

        return self.store.consistent_read(run, LabelFilter(include_hidden=include_hidden), strict=False)

    # -- maintenance ---------------------------------------------------------------------
    def maintain(self) -> None:
        """Schedule an index build, or giving dead rows' disk space back, when due (at most one
        pending of each)."""
        job = self._ann_job()
        if job is not None:
            self._schedule("ann", job)
        if self.store.reclaim_due():
            self._schedule("reclaim", self.store.reclaim)

    def _ann_job(self) -> Callable[[], None] | None:
        view = self.store.view()
        count = view.count
        if count <= self.settings.exact_max or not self.settings.can_build(count):
            return None
        if self._failed_at is not None and abs(count - self._failed_at) < self.settings.tail_max:
            return None  # the last build failed: try again once the index changed enough
        ann = self.ann
        if ann is None or ann.meta.get("kind") != self.settings.kind:
            return self._rebuild
        start = min(ann.covers, view.next_id)
        live_tail = int(np.count_nonzero(view.alive[start : view.next_id]))  # O(tail)
        dead_share = 1 - (count - live_tail) / max(ann.size, 1)
        if count > self.settings.rebuild_growth * ann.meta.get("trained_on", ann.size) or dead_share > self.settings.rebuild_dead:
            return self._rebuild
        if view.next_id - start > self.settings.tail_max:
            return self._extend
        return None

    def _schedule(self, what: str, job: Callable[[], None]) -> None:
        with self._pending_lock:
            if what in self._pending and not self._pending[what].done():
                return

            def run() -> None:
                try:
                    job()
                except Exception as exc:  # logged and reported in stats; searches stay exact
                    self.last_build_error = f"{what}: {type(exc).__name__}: {exc}"
                    if what == "ann":
                        self._failed_at = self.store.count
                    logger.exception("index %r: background %s failed", self.name, what)

            self._pending[what] = self._submit(run)

    def _rebuild(self) -> None:
        view = self.store.view()
        ids = view.live_ids()
        if len(ids) <= self.settings.exact_max or not self.settings.can_build(len(ids)) or self.store.closed:
            return
        self._install(ApproxIndex.build(view, ids, self.settings))

    def _extend(self) -> None:
        ann, view = self.ann, self.store.view()
        if ann is None or self.store.closed:
            return
        self._install(ann.extended(view, view.live_ids(ann.covers), self.settings))

    def _install(self, ann: ApproxIndex) -> None:
        if self.store.closed:
            return  # closed while building: the folder may belong to another process now
        self.ann = ann  # one reference assignment: searches see the old or the new index
        self.store.keep_hot_from(ann.covers)  # the tail it no longer needs leaves the memory
        self.last_build_error = None
        self._failed_at = None
        try:
            ann.save(self.store.folder)
        except OSError:
            logger.exception("index %r: could not save the approximate index (it will be rebuilt)", self.name)
        logger.info("index %r: approximate index ready: %s", self.name, ann.describe())

    def rebuild(self) -> Future:
        """Retrain the approximate index now (in the background)."""
        self._schedule("ann", self._rebuild)
        return self._pending["ann"]

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait for the background jobs scheduled so far (tests, shutdown)."""
        with self._pending_lock:
            pending = list(self._pending.values())
        for fut in pending:
            fut.result(timeout)

    # -- reporting -----------------------------------------------------------------------
    def stats(self) -> dict:
        stats = self.store.stats()
        ann = self.ann
        with self._pending_lock:
            building = "ann" in self._pending and not self._pending["ann"].done()
        stats.update(
            {
                "index_type": "approximate" if self.uses_ann() else "exact",
                "approximate": {
                    "kind": self.settings.kind,
                    "exact_max": self.settings.exact_max,
                    "built": None if ann is None else ann.describe(),
                    "building": building,
                    "last_error": self.last_build_error,
                },
            }
        )
        return stats

    def close(self, checkpoint: bool = True) -> None:
        """Checkpoint and release the index without waiting for an index build (which is only
        a cache: it is rebuilt, or reloaded, at the next start)."""
        with self._pending_lock:
            for fut in self._pending.values():
                fut.cancel()  # those not started yet
        self.store.close(checkpoint)
