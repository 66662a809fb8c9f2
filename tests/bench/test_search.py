"""bench/search.py, PostgreSQL part, at a tiny size on the session's PostgreSQL: the
import takes the bulk path (the HNSW index deferred, then built by the server's own builder),
and the run reports the load, the wait for the index, all told, and recall after it."""

from __future__ import annotations

import importlib
import json

from tests.postgres import url_for


def load_script():
    module = importlib.import_module("bench.search")
    return module


def test_a_tiny_postgres_import_is_measured(tmp_path):
    out = tmp_path / "search.json"
    argv = ["--backends", "postgresql", "--pg-n", "3000", "--dim", "32", "--clusters", "30", "--queries", "20",
            "--filtered-queries", "10", "--pg-incremental", "100", "--pg-url", url_for("postgres"), "--json", str(out)]
    assert load_script().main(argv) == 0
    pg = json.loads(out.read_text())["results"]["postgresql"]
    assert pg["n"] == 3000 and pg["hnsw_after_load"] == "absent" and pg["exact_while_deferred_p50_ms"] > 0
    assert pg["build_s"] is not None and pg["index_ready_s"] >= pg["build_s"]
    assert 0 < pg["all_told_per_s"] < pg["ingest_per_s"]
    assert pg["incremental"]["n"] == 100 and pg["queries"]["recall_at_10"] >= 0.8


def test_a_tiny_sqlite_column_with_its_sweep(tmp_path):
    """The SQLite column at two sizes in one run (one index grown), each reopened by fresh
    processes, and the sweep of nprobe x candidates (each reporting what it re-ranked)."""
    out = tmp_path / "search.json"
    argv = ["--backends", "sqlite", "--n", "3000,6000", "--dim", "32", "--clusters", "30", "--queries", "20", "--batch", "500",
            "--sweep", "--sweep-nprobe", "4,8", "--sweep-candidates", "20,40", "--data-dir", str(tmp_path), "--json", str(out)]
    assert load_script().main(argv) == 0
    results = json.loads(out.read_text())["results"]
    assert [r["n"] for r in results.values()] == [3000, 6000]
    for r in results.values():
        warm = r["warm"]
        assert warm["ann_reloaded"] and r["cold"]["ann_reloaded"] and warm["recall_at_10"] >= 0.8
        assert warm["rss_anon_mib"] > 0 and warm["p50_ms"] > 0
        assert [(s["nprobe"], s["candidates"], s["reranked"]) for s in warm["sweep"]] == [(4, 20, 40), (4, 40, 40), (8, 20, 40), (8, 40, 40)]
    assert list(tmp_path.glob("bench-search-*")) == []  # removed without --keep-index
