"""One searchable embedded index: the SQLite store plus exact and approximate search.

Search is exact (a scan of the stored vectors) up to `exact_max` live items. Above it, an
approximate index proposes candidates, the items added since it was built (the "tail")
are scanned exactly, and every candidate is re-ranked with its stored float32 vector. A
result's key and score come from the same stored row, so a result can never show one
item's key with another's score. Tombstoned ids still in the approximate index are
dropped. Building, extending or retraining runs on a background thread and is swapped in
atomically when done; searches and writes never wait for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from .ann import AnnSettings, ApproxIndex
from .errors import InvalidItem
from .labels import LabelFilter
from .queries import Hit, SearchIndex, check_filter, check_page, matches
from .sqlite_store import SqliteStore
from .table import View

logger = logging.getLogger("image_embed.search.collection")

SCAN_CHUNK = 65536
QUERY_BATCH = 256


class Collection(SearchIndex):
    backend = "sqlite"

    def __init__(self, store: SqliteStore, settings: AnnSettings, submit: Callable[[Callable[[], None]], Future]) -> None:
        self.store, self.settings, self._submit = store, settings, submit
        self.name = store.name
        self.ann: ApproxIndex | None = ApproxIndex.load(store.folder, settings, store.table.next_id)
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
        view, allowed = self.store.view_and_mask(labels or LabelFilter())
        excluded = [set() for _ in range(len(qs))] if exclude is None else [set(e or ()) for e in exclude]
        want = depth + max((len(e) for e in excluded), default=0)
        out = []
        for start in range(0, len(qs), QUERY_BATCH):
            batch = qs[start : start + QUERY_BATCH]
            rows, scores = self._candidates(view, batch, want, where, allowed)
            for i in range(len(batch)):
                hits = []
                for r, s in zip(rows[i], scores[i]):
                    key = view.keys[r]
                    if key in excluded[start + i] or (min_score is not None and s < min_score):
                        continue
                    hits.append(Hit(key, float(s), view.metas[r]))
                    if len(hits) == depth:
                        break
                out.append(hits[offset:])
        return out

    def _candidates(self, view: View, qs: np.ndarray, k: int, where: dict | None, allowed: np.ndarray | None = None):
        """(rows, scores) per query, best first, exact scores from stored vectors; only rows
        that match `where` and that `allowed` (a row mask of the labels) keeps."""
        ann = self.ann if self.uses_ann() else None
        if ann is None:
            return self._exact(view, qs, k, self._filter_mask(view, where, allowed))
        filtered = bool(where) or allowed is not None
        kc = max(self.settings.candidates, 4 * k) * (4 if filtered else 1)
        cand_ids = ann.search(qs, kc)
        tail = np.arange(np.searchsorted(view.ids[: view.n], ann.max_id, side="right"), view.n)
        rows_out, scores_out = [], []
        for i, q in enumerate(qs):
            ids = cand_ids[i][cand_ids[i] >= 0]
            rows = view.rows_of_ids(ids)
            rows = np.concatenate([rows[rows >= 0], tail])
            rows = rows[view.alive[rows]]
            if allowed is not None:
                rows = rows[allowed[rows]]
            if where:
                rows = rows[[matches(view.metas[r], where) for r in rows]] if len(rows) else rows
            scores = view.vectors[rows] @ q
            order = np.argsort(-scores, kind="stable")[:k]
            if filtered and len(order) < k:  # the filter is selective: scan it exactly
                r2, s2 = self._exact(view, q[None], k, self._filter_mask(view, where, allowed))
                rows_out.append(r2[0])
                scores_out.append(s2[0])
                continue
            rows_out.append(rows[order])
            scores_out.append(scores[order])
        return rows_out, scores_out

    def _filter_mask(self, view: View, where: dict | None, allowed: np.ndarray | None = None) -> np.ndarray | None:
        if not where:
            return allowed
        mask = np.fromiter((matches(view.metas[r], where) for r in range(view.n)), bool, view.n)
        return mask if allowed is None else mask & allowed

    @staticmethod
    def _exact(view: View, qs: np.ndarray, k: int, mask: np.ndarray | None):
        """Exact top-k by scanning every live row in chunks (tombstones and filter masked out)."""
        n = view.n
        best_rows = np.empty((len(qs), 0), np.int64)
        best_scores = np.empty((len(qs), 0), np.float32)
        for start in range(0, n, SCAN_CHUNK):
            stop = min(n, start + SCAN_CHUNK)
            scores = qs @ view.vectors[start:stop].T  # (q, chunk)
            keep = view.alive[start:stop] if mask is None else view.alive[start:stop] & mask[start:stop]
            scores[:, ~keep] = -np.inf
            take = min(k, stop - start)
            part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            best_rows = np.concatenate([best_rows, part + start], axis=1)
            best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
            if best_rows.shape[1] > k:
                top = np.argpartition(-best_scores, k - 1, axis=1)[:, :k]
                best_rows = np.take_along_axis(best_rows, top, axis=1)
                best_scores = np.take_along_axis(best_scores, top, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        rows = np.take_along_axis(best_rows, order, axis=1)
        scores = np.take_along_axis(best_scores, order, axis=1)
        out_r, out_s = [], []
        for r, s in zip(rows, scores):
            finite = np.isfinite(s)
            out_r.append(r[finite])
            out_s.append(s[finite])
        return out_r, out_s

    # -- duplicates ----------------------------------------------------------------------
    def clip_duplicates(self, threshold: float = 0.95, limit: int = 1000, neighbors: int = 10, include_hidden: bool = False) -> list[dict]:
        """Pairs of live items with similarity >= threshold, best first (each pair once);
        hidden items only with `include_hidden`.

        Every item is a query for its `neighbors` nearest items: exact below `exact_max`,
        approximate with exact re-ranking above it.
        """
        if not -1.0 <= threshold <= 1.0:
            raise InvalidItem("threshold must be between -1 and 1")
        view, allowed = self.store.view_and_mask(LabelFilter(include_hidden=include_hidden))
        live = view.live_rows()
        if allowed is not None:
            live = live[allowed[live]]
        pairs: dict[tuple[str, str], float] = {}
        for start in range(0, len(live), QUERY_BATCH):
            rows = live[start : start + QUERY_BATCH]
            found_rows, found_scores = self._candidates(view, view.vectors[rows], neighbors + 1, None, allowed)
            for r, cand, scores in zip(rows, found_rows, found_scores):
                for c, s in zip(cand, scores):
                    if c == r or s < threshold:
                        continue
                    a, b = sorted((view.keys[r], view.keys[c]))
                    pairs[(a, b)] = max(pairs.get((a, b), -2.0), float(s))
        best = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"a": a, "b": b, "score": s} for (a, b), s in best]

    # -- maintenance ---------------------------------------------------------------------
    def maintain(self) -> None:
        """Compact the memory when due; schedule an index build when due (at most one pending)."""
        self.store.compact_if_due()
        job = self._ann_job()
        if job is not None:
            self._schedule("ann", job)

    def _ann_job(self) -> Callable[[], None] | None:
        count = self.store.count
        if count <= self.settings.exact_max or not self.settings.can_build(count):
            return None
        if self._failed_at is not None and abs(count - self._failed_at) < self.settings.tail_max:
            return None  # the last build failed: try again once the index changed enough
        ann = self.ann
        if ann is None or ann.meta.get("kind") != self.settings.kind:
            return self._rebuild
        view = self.store.table.view()
        tail = view.n - int(np.searchsorted(view.ids[: view.n], ann.max_id, side="right"))
        live_in_ann = int(np.sum(view.alive[: view.n][view.ids[: view.n] <= ann.max_id]))
        dead_share = 1 - live_in_ann / max(ann.size, 1)
        if count > self.settings.rebuild_growth * ann.meta.get("trained_on", ann.size) or dead_share > self.settings.rebuild_dead:
            return self._rebuild
        if tail > self.settings.tail_max:
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
        view = self.store.table.view()
        rows = view.live_rows()
        if len(rows) <= self.settings.exact_max or not self.settings.can_build(len(rows)) or self.store.closed:
            return
        ann = ApproxIndex.build(view.vectors, rows, view.ids[rows], self.settings)
        self._install(ann)

    def _extend(self) -> None:
        ann, view = self.ann, self.store.table.view()
        if ann is None or self.store.closed:
            return
        start = int(np.searchsorted(view.ids[: view.n], ann.max_id, side="right"))
        rows = start + np.flatnonzero(view.alive[start : view.n])
        self._install(ann.extended(view.vectors, rows, view.ids[rows], self.settings))

    def _install(self, ann: ApproxIndex) -> None:
        if self.store.closed:
            return  # closed while building: the folder may belong to another process now
        self.ann = ann  # one reference assignment: searches see the old or the new index
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
