"""The SQLite column of the search benchmark (bench/search.py, `--scenario search`).

    python -m bench --scenario search --backends sqlite --n 1000000,10000000 \
        --baseline-rev 975d09e --drop-caches --legacy-n 1000000

One index is grown from size to size (--n): each size is ingested through the engine the
index runner uses (`upsert`, batches of --batch, each durable when it returns; the vectors
generated chunk by chunk, never all in memory), its approximate index built in the
foreground (the server builds it in the background), and the index closed. Then, per size,
two fresh processes open it as a restarted index runner does:

- cold: after `sync; echo 1 > /proc/sys/vm/drop_caches` (--drop-caches, as root): the time
  until the first answer, and the p50 of the next 100 queries (disk reads);
- warm: the page cache as the cold process left it: the time until the first answer; then
  every query once (warm-up), then again, measured: recall@10 against exact (numpy, float32),
  p50 / p99, and the process's private memory (RssAnon: not the page cache) and file-backed
  memory (RssFile) after those queries.

--baseline-rev REV runs REV's own bench_search.py (`--backends sqlite`) at the first size in a
temporary git worktree, in the same run: the previous layout beside this one (its data comes
from the same distribution, drawn by its own generator). --legacy-n N writes an index of N
items with REV's own code and times its one-time conversion by this code's first open.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from search.ann import AnnSettings
from search.manifest import Binding

ROOT = Path(__file__).resolve().parent.parent

INDEX = "bench"
CHUNK = 50_000
COLD_QUERIES = 100


def status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def drop_caches() -> bool:
    """Empty the page cache (root only); False when not allowed."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
        return True
    except OSError:
        return False


def chunk(data, seed: int, c: int) -> np.ndarray:
    """Rows [c * CHUNK, (c + 1) * CHUNK) of the stream: the same whatever was drawn before."""
    rng = np.random.default_rng([seed, 7, c])
    labels = rng.integers(0, len(data.centers), CHUNK)
    noise = rng.standard_normal((CHUNK, len(data.scale)), dtype=np.float32) * data.scale
    x = data.centers[labels] + noise @ data.rotation.T
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def stream(data, seed: int, start: int, stop: int):
    """(first id, rows) of ids [start, stop), chunk by chunk."""
    for c in range(start // CHUNK, -(-stop // CHUNK)):
        lo, hi = max(start, c * CHUNK), min(stop, (c + 1) * CHUNK)
        yield lo, chunk(data, seed, c)[lo - c * CHUNK : hi - c * CHUNK]


class Truth:
    """Exact top-10 of each query over everything added so far (float32, numpy)."""

    def __init__(self, queries: np.ndarray, k: int = 10) -> None:
        self.queries, self.k = queries, k
        self.ids = np.empty((len(queries), 0), np.int64)
        self.scores = np.empty((len(queries), 0), np.float32)

    def add(self, first: int, x: np.ndarray) -> None:
        s = np.concatenate([self.scores, self.queries @ x.T], axis=1)
        ids = np.concatenate([self.ids, np.broadcast_to(np.arange(first, first + len(x)), (len(self.queries), len(x)))], axis=1)
        top = np.argpartition(-s, self.k - 1, axis=1)[:, : self.k]
        self.ids, self.scores = np.take_along_axis(ids, top, 1), np.take_along_axis(s, top, 1)


def ann_settings(args) -> AnnSettings:
    return AnnSettings(kind=args.kind, exact_max=0, nprobe=args.nprobe, candidates=args.candidates, tail_max=10**12)


def run_sqlite(args, data, queries: np.ndarray) -> dict:
    from search.collection import Collection
    from search.sqlite_store import open_store

    sizes = sorted(int(n) for n in str(args.n).split(","))
    results: dict = {}
    if args.baseline_rev:
        results[f"sqlite {sizes[0]:,}, previous layout ({args.baseline_rev})"] = baseline(args, sizes[0])
    if args.legacy_n and args.baseline_rev:
        results["conversion of the previous layout"] = conversion(args, args.legacy_n)
    folder = Path(tempfile.mkdtemp(prefix="bench-search-", dir=args.data_dir))
    pool = ThreadPoolExecutor(1)
    truth = Truth(queries)
    seed = args.seed + 1  # the SQLite stream; the queries (and PostgreSQL's data) come from `data`'s own
    ingested, ingest_s = 0, 0.0
    np.save(folder / "queries.npy", queries)
    try:
        for size in sizes:
            store = open_store(folder, INDEX, Binding(model="bench", dim=queries.shape[1]), create=True)
            coll = Collection(store, AnnSettings(kind=args.kind, exact_max=10**12), pool.submit)
            for first, x in stream(data, seed, ingested, size):
                truth.add(first, x)
                start = time.perf_counter()
                for lo in range(0, len(x), args.batch):
                    block = x[lo : lo + args.batch]
                    coll.upsert([str(i) for i in range(first + lo, first + lo + len(block))], block)
                ingest_s += time.perf_counter() - start
            ingested = size
            result = {"n": size, "batch": args.batch, "ingest_s": round(ingest_s, 1), "ingest_per_s": round(size / ingest_s)}
            start = time.perf_counter()
            coll.settings = ann_settings(args)
            coll._rebuild()  # in the foreground here; the server builds in the background
            result["ann_build_s"] = round(time.perf_counter() - start, 1)
            result["ann"] = coll.ann.meta["factory"]
            coll.close()
            np.save(folder / "truth.npy", truth.ids)
            result["bytes_on_disk"] = sum(p.stat().st_blocks * 512 for p in (folder / INDEX).rglob("*") if p.is_file())
            result["cold"] = probe(folder, args, cold=True)
            result["warm"] = probe(folder, args, cold=False)
            results[f"sqlite {size:,}"] = result
            print(json.dumps({f"sqlite {size:,}": result}), file=sys.stderr, flush=True)
        return results
    finally:
        pool.shutdown()
        if args.keep_index:
            print(f"kept: {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def probe(folder: Path, args, cold: bool) -> dict:
    dropped = drop_caches() if cold and args.drop_caches else None
    done = subprocess.run(
        [sys.executable, "-m", "bench.search", "--startup-probe", str(folder), "--kind", args.kind,
         "--nprobe", str(args.nprobe), "--candidates", str(args.candidates)]
        + (["--probe-cold"] if cold else [])
        + (["--sweep", "--sweep-nprobe", args.sweep_nprobe, "--sweep-candidates", args.sweep_candidates] if args.sweep else []),
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    return {"caches_dropped": dropped, **json.loads(done.stdout.strip().splitlines()[-1])}


def startup_probe(folder: str, args) -> None:
    """In a fresh process: open the index as the index runner does, answer queries; times, memory."""
    from search.indexes import IndexRegistry

    queries = np.load(Path(folder) / "queries.npy")
    truth = np.load(Path(folder) / "truth.npy")
    start = time.perf_counter()
    catalog = IndexRegistry(Path(folder), ann_settings=ann_settings(args))
    catalog.open_all()
    index = catalog.get(INDEX)
    index.search(queries[:1], 10)
    out = {"startup_s": round(time.perf_counter() - start, 3), "ann_reloaded": index.ann is not None}

    def timed(qs) -> tuple[list[float], list[list[str]]]:
        times, keys = [], []
        for q in qs:
            t = time.perf_counter()
            (hits,) = index.search(q[None], 10)
            times.append(time.perf_counter() - t)
            keys.append([h.key for h in hits])
        return times, keys

    if args.probe_cold:
        times, _ = timed(queries[1 : 1 + COLD_QUERIES])
        out["p50_ms_first_100"] = round(float(np.percentile(times, 50)) * 1000, 3)
    else:
        timed(queries)  # warm-up
        times, keys = timed(queries)
        out.update(quality(times, keys, truth))
        out.update({"rss_anon_mib": round(status_mib("RssAnon")), "rss_file_mib": round(status_mib("RssFile"))})
        if args.sweep:  # recall against latency: IVF lists probed x candidates re-ranked
            out["sweep"] = sweep(index, queries, truth, args, timed)
    print(json.dumps(out))
    catalog.close()


def quality(times: list[float], keys: list[list[str]], truth: np.ndarray) -> dict:
    """recall@10 against the exact truth, and p50 / p99 latency."""
    recall = [len(set(k) & {str(i) for i in t}) / len(t) for k, t in zip(keys, truth)]
    ms = np.asarray(times) * 1000
    return {"recall_at_10": round(float(np.mean(recall)), 4), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def sweep(index, queries, truth, args, timed) -> list[dict]:
    rows = []
    for nprobe in [int(v) for v in args.sweep_nprobe.split(",")]:
        for candidates in [int(v) for v in args.sweep_candidates.split(",")]:
            index.settings = dataclasses.replace(ann_settings(args), nprobe=nprobe, candidates=candidates)
            index.ann.set_search_params(index.settings)
            timed(queries)  # warm-up: the rows these candidates reach, paged in
            times, keys = timed(queries)
            reranked = index.settings.candidates_for(index.store.count, 10)
            rows.append({"nprobe": nprobe, "candidates": candidates, "reranked": reranked, **quality(times, keys, truth)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def worktree(rev: str, parent: Path) -> Path:
    place = Path(tempfile.mkdtemp(prefix="bench-baseline-", dir=parent))
    subprocess.run(["git", "worktree", "add", "--detach", str(place), rev], cwd=ROOT, check=True, capture_output=True)
    return place


def drop_worktree(place: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(place)], cwd=ROOT, capture_output=True)
    shutil.rmtree(place, ignore_errors=True)


def baseline(args, n: int) -> dict:
    """REV's own benchmark of the embedded back end at `n` (its layout, its probe)."""
    parent = Path(args.data_dir or tempfile.gettempdir())
    place = worktree(args.baseline_rev, parent)
    try:
        out = place / "baseline.json"
        subprocess.run(
            [sys.executable, "scripts/bench_search.py", "--backends", "sqlite", "--n", str(n), "--batch", str(args.batch),
             "--queries", str(args.queries), "--dim", str(args.dim), "--clusters", str(args.clusters), "--seed", str(args.seed),
             "--data-dir", str(parent), "--json", str(out)],
            cwd=place, check=True, env={**os.environ, "PYTHONPATH": str(place)}, stdout=subprocess.DEVNULL,
        )
        return json.loads(out.read_text())["results"]["sqlite"]
    finally:
        drop_worktree(place)


LEGACY_WRITER = """
import sys, numpy as np
from scripts.bench_search import ClusteredData
from search.manifest import Binding
from search.sqlite_store import open_store
folder, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = open_store(folder, "legacy", Binding(model="bench", dim=dim), create=True)
data = ClusteredData(dim, 1000, 0)
for first in range(0, n, 50_000):
    x = data.draw(min(50_000, n - first))
    for lo in range(0, len(x), 10_000):
        store.upsert([str(i) for i in range(first + lo, first + lo + len(x[lo:lo + 10_000]))], x[lo:lo + 10_000])
store.close()
"""


def conversion(args, n: int) -> dict:
    """An index of `n` items written by REV's code, then opened (converted) by this code."""
    from search.indexes import IndexRegistry

    parent = Path(args.data_dir or tempfile.gettempdir())
    place, folder = worktree(args.baseline_rev, parent), Path(tempfile.mkdtemp(prefix="bench-legacy-", dir=parent))
    try:
        subprocess.run(
            [sys.executable, "-c", LEGACY_WRITER, str(folder), str(n), str(args.dim)],
            cwd=place, check=True, env={**os.environ, "PYTHONPATH": str(place)},  # REV's own modules
        )
        before = sum(p.stat().st_size for p in (folder / "legacy").rglob("*") if p.is_file())
        start = time.perf_counter()
        catalog = IndexRegistry(folder, ann_settings=AnnSettings(kind=args.kind, exact_max=10**12))
        index = catalog.get("legacy")
        took = time.perf_counter() - start
        count, ok = index.count, index.check().ok
        catalog.close()
        after = sum(p.stat().st_blocks * 512 for p in (folder / "legacy").rglob("*") if p.is_file())
        return {"n": n, "convert_s": round(took, 1), "count": count, "check_ok": ok, "bytes_before": before, "bytes_after": after}
    finally:
        drop_worktree(place)
        shutil.rmtree(folder, ignore_errors=True)


def table(results: dict) -> str:
    """The SQLite columns as Markdown."""
    cols = {k: r for k, r in results.items() if k.startswith("sqlite")}

    def cell(r: dict, new, old=lambda r: "—") -> str:
        try:
            return str(new(r)) if "warm" in r else str(old(r))
        except (KeyError, TypeError):
            return "—"

    rows = [
        ("items", lambda r: f"{r['n']:,}", lambda r: f"{r['n']:,}"),
        ("ingest (vectors/s, engine upsert)", lambda r: f"{r['ingest_per_s']:,} (batches of {r['batch']:,})",
         lambda r: f"{r['ingest_per_s']:,}"),
        ("start-up to the first answer, page cache dropped (s)",
         lambda r: r["cold"]["startup_s"] if r["cold"]["caches_dropped"] else "— (not dropped)"),
        ("start-up to the first answer, warm (s)", lambda r: r["warm"]["startup_s"], lambda r: r["startup_s"]),
        ("private memory after 1,000 queries (RssAnon, MiB)", lambda r: r["warm"]["rss_anon_mib"],
         lambda r: f"{r['rss_mib']} (RSS)"),
        ("file-backed memory (RssFile, MiB)", lambda r: r["warm"]["rss_file_mib"]),
        ("recall@10", lambda r: r["warm"]["recall_at_10"], lambda r: r["queries"]["recall_at_10"]),
        ("p50 / p99 warm (ms)", lambda r: f"{r['warm']['p50_ms']} / {r['warm']['p99_ms']}",
         lambda r: f"{r['queries']['p50_ms']} / {r['queries']['p99_ms']}"),
        ("p50 of the first 100 queries, cold (ms)",
         lambda r: r["cold"]["p50_ms_first_100"] if r["cold"]["caches_dropped"] else "— (not dropped)"),
        ("approximate index, built in (s)", lambda r: f"{r['ann']}, {r['ann_build_s']}", lambda r: f"{r['ann']}, {r['ann_build_s']}"),
        ("on disk (GB)", lambda r: round(r["bytes_on_disk"] / 1e9, 2), lambda r: round(r["bytes_on_disk"] / 1e9, 2)),
    ]
    names = list(cols)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, new, *old in rows:
        lines.append(f"| {label} | " + " | ".join(cell(cols[n], new, *old) for n in names) + " |")
    conv = results.get("conversion of the previous layout")
    if conv:
        lines.append(
            f"\nAn index of {conv['n']:,} items in the previous layout ({conv['bytes_before'] / 1e9:.2f} GB) converted at its first "
            f"open in {conv['convert_s']} s ({conv['bytes_after'] / 1e9:.2f} GB after; check ok: {conv['check_ok']})."
        )
    return "\n".join(lines)
