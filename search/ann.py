"""Approximate candidates from FAISS over a frozen set of ids.

An `ApproxIndex` is built from the live rows at one moment and never changes afterwards;
growing it makes a new object (a clone with the new rows added), so searches keep using
the old one until the new one is swapped in. It only proposes candidate ids: the
collection re-ranks them exactly with the stored float32 vectors, so the compressed codes
decide recall, never the scores or which key a result belongs to.

FAISS labels are positions in `ids` (the rows were added in id order), so one mapping
works for every index type, HNSW included.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config.settings import INDEX_KINDS


KINDS = INDEX_KINDS  # declared with IMAGE_EMBED_INDEX_KIND
ADD_CHUNK = 65536
MIN_POINTS_PER_LIST = 39  # k-means wants at least this many training points per centroid
MIN_IVF_ITEMS = 256  # below this an IVF index is pointless (and PQ cannot train)


@dataclass(frozen=True, kw_only=True)
class AnnSettings:
    """How and when the approximate index is used. Defaults chosen by scripts/bench_search.py
    (docs/performance.md, "Search"). At 1M clustered 512-d vectors on 2 shared cores:
    recall@10 is set by the candidates re-ranked, not by nprobe (8 and 32 give the same):
    20 -> 0.83, 50 -> 0.88, 100 -> 0.975, 200 -> 0.998, at p50 0.7 / 0.75 / 0.9 / 1.05 ms.
    IVF-PQ fast-scan was chosen over HNSW: at 200k it built in 35 s against 75 s
    (HNSW32,SQ8) with recall 0.997 against 0.96-0.986 at similar latency, and it takes
    ~60 MB at 1M against ~800 MB. Exact search takes ~2 ms at 20k items (~90 ms at 1M)."""

    kind: str = "ivfpq"  # ivfpq: IVF + 4-bit fast-scan PQ; hnsw: HNSW graph over 8-bit SQ codes
    exact_max: int = 20_000  # up to this many live items, every search is exact (flat)
    candidates: int = 200  # approximate candidates re-ranked exactly (at least 4 x top_k)
    nlist: int = 0  # IVF lists; 0: about 4 x sqrt(n), a power of two
    pq_m: int = 0  # PQ sub-quantizers; 0: dim / 8
    nprobe: int = 16
    train_per_list: int = 30  # IVF training points per list (capped by n)
    train_niter: int = 10  # k-means iterations when training
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 64
    tail_max: int = 10_000  # items not yet in the index (searched exactly) before it is extended
    rebuild_growth: float = 2.0  # retrain once the index has grown this much since training
    rebuild_dead: float = 0.3  # ... or once this share of its ids are deleted or replaced

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"approximate index kind {self.kind!r} is unknown; use one of {KINDS}")

    def factory(self, n: int, dim: int) -> str:
        if self.kind == "hnsw":
            return f"HNSW{self.hnsw_m},SQ8"
        return f"IVF{self.lists_for(n)},PQ{self.pq_m or max(1, dim // 8)}x4fs"

    def lists_for(self, n: int) -> int:
        """IVF lists: the setting, else about 4 x sqrt(n) (a power of two); never more than
        n / MIN_POINTS_PER_LIST, so k-means always has enough points."""
        wanted = self.nlist or int(min(65536, 2 ** round(math.log2(4 * math.sqrt(max(n, 1))))))
        return max(1, min(wanted, n // MIN_POINTS_PER_LIST))

    def can_build(self, n: int) -> bool:
        return n >= (MIN_IVF_ITEMS if self.kind == "ivfpq" else 1)


class ApproxIndex:
    def __init__(self, index, ids: np.ndarray, meta: dict) -> None:
        self.index = index
        self.ids = ids  # FAISS label -> our id
        self.meta = meta  # kind, factory, trained_on, built_at, build_s

    @property
    def max_id(self) -> int:
        return int(self.ids[-1]) if len(self.ids) else -1

    @property
    def size(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, vectors: np.ndarray, rows: np.ndarray, ids: np.ndarray, settings: AnnSettings, seed: int = 0):
        """Train on a sample of `vectors[rows]` and add them all; labels follow `ids`."""
        import faiss

        started = time.perf_counter()
        dim = vectors.shape[1]
        factory = settings.factory(len(rows), dim)
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
        try:
            faiss.extract_index_ivf(index).cp.niter = settings.train_niter
        except RuntimeError:
            pass
        if settings.kind == "hnsw":
            faiss.downcast_index(index).hnsw.efConstruction = settings.ef_construction
        if not index.is_trained:
            per = settings.train_per_list * settings.lists_for(len(rows)) if settings.kind == "ivfpq" else 50_000
            size = min(len(rows), max(per, 1000))
            sample = np.sort(np.random.default_rng(seed).choice(len(rows), size, replace=False))
            index.train(np.ascontiguousarray(vectors[rows[sample]]))
        meta = {"kind": settings.kind, "factory": factory, "trained_on": len(rows)}
        meta["train_s"] = round(time.perf_counter() - started, 3)
        built = cls(index, np.empty(0, np.int64), meta)
        built._add(vectors, rows, ids)
        built._set_search_params(settings)
        built.meta["build_s"] = round(time.perf_counter() - started, 3)
        built.meta["built_at"] = time.time()
        return built

    def extended(self, vectors: np.ndarray, rows: np.ndarray, ids: np.ndarray, settings: AnnSettings) -> "ApproxIndex":
        """A copy with more rows (ids above every id already in it); this one stays as it is."""
        import faiss

        copy = ApproxIndex(faiss.clone_index(self.index), self.ids.copy(), dict(self.meta))
        copy._add(vectors, rows, ids)
        copy._set_search_params(settings)
        return copy

    def _add(self, vectors: np.ndarray, rows: np.ndarray, ids: np.ndarray) -> None:
        if len(ids) and len(self.ids) and ids[0] <= self.ids[-1]:
            raise ValueError("ids added to an approximate index must grow")
        for start in range(0, len(rows), ADD_CHUNK):
            self.index.add(np.ascontiguousarray(vectors[rows[start : start + ADD_CHUNK]]))
        self.ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])
        if self.index.ntotal != len(self.ids):
            raise RuntimeError("approximate index and its id map disagree")

    def _set_search_params(self, settings: AnnSettings) -> None:
        import faiss

        if self.meta["kind"] == "hnsw":
            faiss.downcast_index(self.index).hnsw.efSearch = settings.ef_search
        else:
            faiss.extract_index_ivf(self.index).nprobe = settings.nprobe

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Candidate ids (len(queries), k), -1 where fewer were found."""
        k = max(1, min(k, self.size))
        _, labels = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return np.where(labels >= 0, self.ids[np.maximum(labels, 0)], -1)

    def memory_bytes(self) -> int:
        import faiss

        return int(faiss.serialize_index(self.index).nbytes + self.ids.nbytes)

    # -- persistence ---------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        """Write `ann-<max id>/` by a rename (it only saves a rebuild after a restart: a
        torn or stale one is refused by `load` and rebuilt, so it needs no fsync)."""
        import faiss

        tmp = folder / f".tmp-ann-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir()
        try:
            faiss.write_index(self.index, str(tmp / "index.faiss"))
            np.save(tmp / "ids.npy", self.ids)
            (tmp / "ann.json").write_text(json.dumps({**self.meta, "size": self.size, "max_id": self.max_id}))
            final = folder / f"ann-{self.max_id + 1:020d}"
            shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in folder.glob("ann-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        return final

    @classmethod
    def load(cls, folder: Path, settings: AnnSettings, next_id: int) -> "ApproxIndex | None":
        """The saved index, or None when there is none usable (then it is rebuilt)."""
        import faiss

        saved = sorted(folder.glob("ann-*"))
        if not saved:
            return None
        path = saved[-1]
        try:
            meta = json.loads((path / "ann.json").read_text())
            ids = np.load(path / "ids.npy")
            if meta["kind"] != settings.kind or len(ids) != meta["size"] or (len(ids) and ids[-1] >= next_id):
                return None
            if len(ids) and np.any(np.diff(ids) <= 0):
                return None
            index = faiss.read_index(str(path / "index.faiss"))
            if index.ntotal != len(ids):
                return None
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        keep = ("kind", "factory", "trained_on", "train_s", "build_s", "built_at")
        loaded = cls(index, ids, {k: meta[k] for k in keep if k in meta})
        loaded._set_search_params(settings)
        return loaded

    def describe(self) -> dict:
        return {**self.meta, "size": self.size, "max_id": self.max_id}

