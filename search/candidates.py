"""The best ids of an embedded search, with exact scores from the stored vectors (store_view.py):

- `exact`: every live id (or the given ids) scored, top k kept chunk by chunk;
- `approximate`: the approximate index's candidates plus the tail it does not cover yet
  (ids from `ann.covers` on), the live ones the label filter keeps, re-ranked exactly.

Both return, per query, (ids, scores) best first. The collection turns ids into keys.
"""

from __future__ import annotations

import numpy as np

SCAN_CHUNK = 16384


def _merge(best_i: np.ndarray, best_s: np.ndarray, ids: np.ndarray, scores: np.ndarray, k: int):
    """The k best of what was kept and one more chunk (per query row)."""
    cat_i = np.concatenate([best_i, np.broadcast_to(ids, scores.shape)], axis=1)
    cat_s = np.concatenate([best_s, scores], axis=1)
    if cat_s.shape[1] <= k:
        return cat_i, cat_s
    top = np.argpartition(-cat_s, k - 1, axis=1)[:, :k]
    return np.take_along_axis(cat_i, top, axis=1), np.take_along_axis(cat_s, top, axis=1)


def _sorted(best_i: np.ndarray, best_s: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    order = np.argsort(-best_s, axis=1, kind="stable")
    ids, scores = np.take_along_axis(best_i, order, axis=1), np.take_along_axis(best_s, order, axis=1)
    return [(i, s) for i, s in zip(ids, scores)]


def exact(view, qs: np.ndarray, k: int, allowed: np.ndarray | None = None, ids_filter=None):
    """Exact top-k per query over the live ids the filter keeps, or over `allowed` (live ids)."""
    best_i = np.empty((len(qs), 0), np.int64)
    best_s = np.empty((len(qs), 0), np.float32)
    if allowed is not None:
        for start in range(0, len(allowed), SCAN_CHUNK):
            part = allowed[start : start + SCAN_CHUNK]
            best_i, best_s = _merge(best_i, best_s, part, qs @ view.rows(part).T, k)
        return _sorted(best_i, best_s)
    for start in range(0, view.next_id, SCAN_CHUNK):
        stop = min(view.next_id, start + SCAN_CHUNK)
        keep = view.alive[start:stop].copy()
        if ids_filter is not None:
            keep &= ids_filter.keep(np.arange(start, stop))
        if not keep.any():
            continue
        ids = start + np.flatnonzero(keep)
        rows = view.block(start, stop)
        best_i, best_s = _merge(best_i, best_s, ids, qs @ (rows if keep.all() else rows[keep]).T, k)
    return _sorted(best_i, best_s)


def approximate(view, ann, qs: np.ndarray, kc: int, ids_filter=None):
    """Per query: the approximate index's `kc` candidates and the best `kc` of the tail, live
    and kept by the filter, re-ranked by exact scores."""
    cand = ann.search(qs, kc)
    start = min(ann.covers, view.next_id)
    tail_ids = view.live_ids(start)
    if ids_filter is not None and len(tail_ids):
        tail_ids = tail_ids[ids_filter.keep(tail_ids)]
    tail_scores = None
    if len(tail_ids):  # the tail is contiguous and (normally) float32 in memory: one product
        tail_scores = (qs @ view.block(start, view.next_id).T)[:, tail_ids - start]
    out = []
    for i, q in enumerate(qs):
        ids = cand[i]
        ids = ids[(ids >= 0) & (ids < view.next_id)]  # an index newer than the view: not in it
        ids = ids[view.alive[ids]]
        if ids_filter is not None:
            ids = ids[ids_filter.keep(ids)]
        scores = view.rows(ids) @ q
        if tail_scores is not None:
            t_ids, t_scores = tail_ids, tail_scores[i]
            if len(t_ids) > kc:
                sel = np.argpartition(-t_scores, kc - 1)[:kc]
                t_ids, t_scores = t_ids[sel], t_scores[sel]
            ids, scores = np.concatenate([ids, t_ids]), np.concatenate([scores, t_scores])
        order = np.argsort(-scores, kind="stable")
        out.append((ids[order], scores[order]))
    return out
