"""Search benchmark: build time, memory, recall@10 and query latency of exact and
approximate search over clustered 512-d vectors, through the engine the server runs.

    python scripts/bench_search.py                       # 1M vectors (several minutes on 2 cores)
    python scripts/bench_search.py --n 100000 --kind hnsw
    python scripts/bench_search.py --n 200000 --sweep    # nprobe x candidates table

Data (generated here, never stored): `--clusters` Gaussian clusters, centres uniform on the
sphere; around each, noise with a power-law spectrum (scale of component i ~ i^-0.7) in a
random rotation, norm 0.75, then L2-normalized: neighbours have cosine ~0.85-0.9, like
image embeddings, and the data has a low intrinsic dimension, like theirs. Queries are
fresh draws from the same distribution.

Measured: ingest into the durable store (write-ahead log, fsync per batch), the final
snapshot, approximate index build (train + add), resident memory, recall@10 of the
approximate path (candidates re-ranked exactly) against exact search, and single-query
p50/p99 latency of both through `Collection.search`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.ann import AnnSettings  # noqa: E402
from search.collection import Collection  # noqa: E402
from search.manifest import Binding  # noqa: E402
from search.store import StoreSettings, open_store  # noqa: E402

CHUNK = 50_000


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class ClusteredData:
    def __init__(self, dim: int, clusters: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.centers = rng.standard_normal((clusters, dim)).astype(np.float32)
        self.centers /= np.linalg.norm(self.centers, axis=1, keepdims=True)
        self.rotation = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
        scale = np.arange(1, dim + 1, dtype=np.float32) ** -0.7
        self.scale = scale * (0.75 / np.sqrt(np.sum(scale**2)))
        self.rng = rng

    def draw(self, n: int) -> np.ndarray:
        labels = self.rng.integers(0, len(self.centers), n)
        noise = self.rng.standard_normal((n, len(self.scale)), dtype=np.float32) * self.scale
        x = self.centers[labels] + noise @ self.rotation.T
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def percentiles(times: list[float]) -> dict:
    ms = np.asarray(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def timed_searches(coll: Collection, queries: np.ndarray, top_k: int = 10) -> tuple[list[list[str]], list[float]]:
    keys, times = [], []
    for q in queries:
        start = time.perf_counter()
        (hits,) = coll.search(q[None], top_k)
        times.append(time.perf_counter() - start)
        keys.append([h.key for h in hits])
    return keys, times


def recall_at_10(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def run(args: argparse.Namespace) -> dict:
    data = ClusteredData(args.dim, args.clusters, args.seed)
    queries = data.draw(args.queries)
    result: dict = {"n": args.n, "dim": args.dim, "clusters": args.clusters, "queries": args.queries, "kind": args.kind}
    rss0 = rss_mib()
    folder = Path(tempfile.mkdtemp(prefix="bench-search-", dir=args.data_dir))
    settings = AnnSettings(
        kind=args.kind,
        exact_max=0,
        nprobe=args.nprobe,
        candidates=args.candidates,
        ef_search=args.ef_search,
        tail_max=10**12,  # the benchmark builds explicitly
    )
    store = open_store(folder, "bench", Binding(model="bench", dim=args.dim), create=True,
                       settings=StoreSettings(snapshot_every=10**12, snapshot_bytes=2**62))
    pool = ThreadPoolExecutor(1)
    coll = Collection(store, dataclasses.replace(settings, exact_max=10**12), pool.submit)

    start = time.perf_counter()
    generate_s = 0.0
    for first in range(0, args.n, CHUNK):
        g = time.perf_counter()
        block = data.draw(min(CHUNK, args.n - first))
        generate_s += time.perf_counter() - g
        store.upsert([str(i) for i in range(first, first + len(block))], block)
    result["ingest_s"] = round(time.perf_counter() - start - generate_s, 2)
    result["ingest_per_s"] = round(args.n / result["ingest_s"])
    start = time.perf_counter()
    store.snapshot()
    result["snapshot_s"] = round(time.perf_counter() - start, 2)
    result["rss_store_mib"] = round(rss_mib() - rss0)

    # Exact search: the ground truth (batched) and single-query latency.
    view = store.table.view()
    rows, _ = Collection._exact(view, queries, 10, None)
    truth = [[view.keys[r] for r in per_q] for per_q in rows]
    _, exact_times = timed_searches(coll, queries[: args.exact_queries])
    result["exact"] = percentiles(exact_times)

    # Approximate: build (in the foreground here; the server builds in the background).
    rss1 = rss_mib()
    start = time.perf_counter()
    coll.settings = settings
    coll._rebuild()
    result["build_s"] = round(time.perf_counter() - start, 2)
    result["train_s"] = coll.ann.meta.get("train_s")
    result["factory"] = coll.ann.meta["factory"]
    result["rss_ann_mib"] = round(rss_mib() - rss1)
    result["ann_bytes"] = coll.ann.memory_bytes()
    result["bytes_on_disk"] = store.stats()["bytes_on_disk"]
    assert coll.uses_ann()
    found, approx_times = timed_searches(coll, queries)
    result["approximate"] = {"recall_at_10": round(recall_at_10(found, truth), 4), **percentiles(approx_times)}
    result["approximate"].update({"nprobe": args.nprobe, "candidates": args.candidates, "ef_search": args.ef_search})

    if args.sweep:
        result["sweep"] = sweep(coll, settings, queries, truth)
    coll.close()
    pool.shutdown()
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return result


def sweep(coll: Collection, settings: AnnSettings, queries: np.ndarray, truth) -> list[dict]:
    rows = []
    knobs = [1, 4, 8, 16, 32] if settings.kind == "ivfpq" else [16, 32, 64, 128]
    for knob in knobs:
        for candidates in (20, 50, 100, 200):
            s = dataclasses.replace(settings, candidates=candidates, nprobe=knob, ef_search=knob)
            coll.settings = s
            coll.ann._set_search_params(s)
            found, times = timed_searches(coll, queries)
            name = "nprobe" if settings.kind == "ivfpq" else "ef_search"
            rows.append({name: knob, "candidates": candidates, "recall_at_10": round(recall_at_10(found, truth), 4), **percentiles(times)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    coll.settings = settings
    coll.ann._set_search_params(settings)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = AnnSettings()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--queries", type=int, default=1000, help="for recall and approximate latency")
    p.add_argument("--exact-queries", type=int, default=100, help="for exact latency (each scans everything)")
    p.add_argument("--kind", choices=("ivfpq", "hnsw"), default=d.kind)
    p.add_argument("--nprobe", type=int, default=d.nprobe)
    p.add_argument("--candidates", type=int, default=d.candidates)
    p.add_argument("--ef-search", type=int, default=d.ef_search)
    p.add_argument("--sweep", action="store_true", help="also measure a grid of search parameters")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="where the temporary index goes (default: the temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the index files")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(run(parse_args(argv)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
