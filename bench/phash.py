"""Perceptual-hash duplicates at scale: find_duplicates(method="phash") on generated hashes.

    python -m bench --scenario phash                      # 1M hashes, max_distance 5
    python -m bench --scenario phash --n 100000 --skip-store   # a quick run

Data (generated, never stored): --n random 64-bit hashes, of which --groups are the first
of a planted group of 2-5 copies, each copy with up to --max-distance random bits flipped.

Measured:
- groups: search.phash_groups.groups() alone (multi-index hashing, FAISS
  IndexBinaryMultiHash), and whether every planted group was found;
- all pairs, estimated: FAISS's exhaustive IndexBinaryFlat range search for --brute-sample
  queries, scaled to n queries (what comparing every pair would take);
- store: the same hashes in an embedded index (SQLite; 8-d vectors, so that the hashes, not
  the vectors, are what is measured): the whole `duplicates("phash")` call the index runner
  answers, reading the hashes from the database included.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np



def make_hashes(n: int, groups: int, max_distance: int, seed: int) -> tuple[np.ndarray, list[list[int]]]:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(0, 2, n).astype(np.uint64)
    planted, at = [], 0
    for _ in range(groups):
        size = int(rng.integers(2, 6))
        members = list(range(at, at + size))
        for m in members[1:]:
            flips = rng.choice(64, int(rng.integers(0, max_distance + 1)), replace=False)
            hashes[m] = hashes[members[0]] ^ np.uint64(sum(1 << int(b) for b in flips))
        planted.append(members)
        at += size
    return hashes, planted


def brute_force_estimate(hashes: np.ndarray, sample: int, max_distance: int) -> float:
    import faiss

    from search.phash_groups import as_codes

    index = faiss.IndexBinaryFlat(64)
    codes = as_codes(hashes)
    index.add(codes)
    started = time.perf_counter()
    index.range_search(codes[:sample], max_distance + 1)
    return (time.perf_counter() - started) / sample * len(hashes)


def found_all(groups: list[dict], planted: list[list[int]], keys: list[str]) -> bool:
    where = {it["key"]: i for i, g in enumerate(groups) for it in g["items"]}
    return all(len({where.get(keys[m]) for m in members}) == 1 and keys[members[0]] in where for members in planted)


def bench_store(keys: list[str], hashes: np.ndarray, max_distance: int) -> dict:
    from search.ann import AnnSettings
    from search.indexes import IndexRegistry
    from search.manifest import Binding

    folder = tempfile.mkdtemp(prefix="bench-phash-")
    catalog = IndexRegistry(Path(folder), ann_settings=AnnSettings(exact_max=10**12))  # no vector index: hashes only
    try:
        ix = catalog.get("phash", Binding(model="bench", dim=8), create=True)
        vectors = np.random.default_rng(1).standard_normal((50_000, 8)).astype(np.float32)
        started = time.perf_counter()
        for s in range(0, len(keys), 50_000):
            block = keys[s : s + 50_000]
            ix.upsert(block, vectors[: len(block)], phashes=[int(h) for h in hashes[s : s + 50_000]])
        ingest = time.perf_counter() - started
        started = time.perf_counter()
        answer = ix.duplicates("phash", max_distance=max_distance, limit=10**9)
        took = time.perf_counter() - started
        return {"ingest_s": round(ingest, 1), "duplicates_s": round(took, 2), "groups": len(answer["groups"])}
    finally:
        catalog.close()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--groups", type=int, default=10_000, help="planted groups of near copies (default %(default)s)")
    p.add_argument("--max-distance", type=int, default=5)
    p.add_argument("--brute-sample", type=int, default=2000, help="queries timed for the all-pairs estimate")
    p.add_argument("--skip-store", action="store_true", help="only the grouping, not through an index")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from search.phash_groups import groups, plan

    hashes, planted = make_hashes(args.n, args.groups, args.max_distance, args.seed)
    keys = [f"img/{i:08d}.jpg" for i in range(args.n)]
    started = time.perf_counter()
    found = groups(keys, hashes, args.max_distance)
    took = time.perf_counter() - started
    report = {
        "n": args.n,
        "max_distance": args.max_distance,
        "plan": vars(plan(args.max_distance)) if hasattr(plan(args.max_distance), "__dict__") else str(plan(args.max_distance)),
        "groups_s": round(took, 2),
        "groups_found": len(found),
        "planted_groups": len(planted),
        "every_planted_group_found": found_all(found, planted, keys),
        "all_pairs_estimate_s": round(brute_force_estimate(hashes, min(args.brute_sample, args.n), args.max_distance), 1),
    }
    print(json.dumps(report), file=sys.stderr, flush=True)
    if not args.skip_store:
        report["store"] = bench_store(keys, hashes, args.max_distance)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["every_planted_group_found"] else 1


if __name__ == "__main__":
    sys.exit(main())
