"""Crashes between the vector file's write and the database's commit (the embedded back end).

A writer process streams acknowledged upserts (and deletes) and kills itself with SIGKILL at
a test-only crash point of its N-th upsert (search/crash_points.py):

    vectors_written   the rows are in the vector file, not fsync'd, nothing committed
    vectors_synced    the rows are fsync'd, the transaction not committed
    committed         the transaction is committed, the call not acknowledged

After each crash the index opens (the rows past the watermark cut off), every acknowledged
item is there holding exactly its own vector, the batch in flight is there whole or not at
all, and after more writes (which take the crashed write's ids again) every item still finds
itself first with its own score and the full check (every row against its checksum) passes.

The other order, a committed database whose vector rows are missing (a vector file restored
from an earlier moment), cannot come from a crash, since the rows are fsync'd first: the open
refuses it rather than serve other rows.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from search.errors import CorruptIndex
from tests.conftest import ROOT
from tests.search.backends import open_indexes
from tests.search.helpers import BINDING, vectors_for

pytestmark = pytest.mark.slow


def write_until(place: str, seed: int, first_key: int, crash_at: str | None, stop_after: int = 10**9):
    """Run the writer; returns (acked keys, acked deletes, deletes started, the batch in flight)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("IMAGE_EMBED_TEST_INDEX_CRASH_AT", None)
    if crash_at:
        env["IMAGE_EMBED_TEST_INDEX_CRASH_AT"] = crash_at
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.search.crash_writer", place, str(seed), str(first_key)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env,
    )
    acked, deleted, started, writing = set(), set(), set(), set()
    try:
        acks = 0
        for line in proc.stdout:
            parts = line.split()
            if parts[0] == "WRITING":
                writing = {str(i) for i in range(int(parts[1]), int(parts[2]) + 1)}
            elif parts[0] == "ACK":
                acked |= writing
                writing, acks = set(), acks + 1
                if acks >= stop_after:
                    proc.kill()
                    break
            elif parts[0] == "DEL":
                deleted.add(parts[1])
            elif parts[0] == "DELETING":
                started.add(parts[1])
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if crash_at:
        assert proc.returncode == -signal.SIGKILL, "the writer was meant to die at its crash point"
    return acked, deleted, started, writing


def check_index(place: str, acked: set, deleted: set, started: set) -> set[str]:
    catalog = open_indexes(place)
    try:
        ix = catalog.get("ix", BINDING)
        live = set(ix.keys())
        assert (acked - started) <= live, "acknowledged items were lost"
        assert not (live & deleted), "acknowledged deletes came back"
        items = ix.get(sorted(live), with_vectors=True)
        expected = ix.store.stored_vectors(vectors_for([it.key for it in items]))
        for item, vec in zip(items, expected):
            np.testing.assert_array_equal(item.vector, vec)  # exactly its own vector, no other's
            assert item.metadata == {"n": int(item.key)}
        keys = sorted(live)
        for key, hits in zip(keys, ix.search(vectors_for(keys), top_k=1)):  # each finds itself, by its own score
            assert hits[0].key == key and hits[0].score == pytest.approx(1.0, abs=1e-3)
        report = ix.check()  # every row against its checksum, liveness, counts
        assert report.ok, report.problems
        return live
    finally:
        catalog.close()


@pytest.mark.parametrize("point", ["vectors_written", "vectors_synced", "committed"])
def test_a_crash_between_the_vector_file_and_the_commit(tmp_path, point):
    place = str(tmp_path)
    acked, deleted, started = set(), set(), set()
    for round_, nth in enumerate((1, 9, 30)):
        a, d, s, in_flight = write_until(place, seed=round_, first_key=100_000 * round_, crash_at=f"{point}:{nth}")
        acked, deleted, started = acked | a, deleted | d, started | s
        assert in_flight, "the crash landed inside an upsert"
        live = check_index(place, acked, deleted, started)
        present = in_flight & live
        assert present in (set(), in_flight), "the batch in flight is there whole or not at all"
        assert bool(present) == (point == "committed")  # committed: durable though never acknowledged
        # more writes: they take the uncommitted ids (and their rows) again
        a, d, s, _ = write_until(place, seed=50 + round_, first_key=100_000 * round_ + 50_000, crash_at=None, stop_after=5)
        acked, deleted, started = acked | a, deleted | d, started | s
        check_index(place, acked, deleted, started)


def test_a_database_ahead_of_its_vector_file_is_refused(tmp_path):
    place = str(tmp_path)
    write_until(place, seed=1, first_key=0, crash_at=None, stop_after=3)
    vectors = tmp_path / "ix" / "vectors.f16"
    shutil.copy(vectors, tmp_path / "earlier.f16")
    write_until(place, seed=2, first_key=10_000, crash_at=None, stop_after=3)
    shutil.copy(tmp_path / "earlier.f16", vectors)  # the vector file of an earlier moment
    catalog = open_indexes(place)
    try:
        # shorter than the watermark, or (the map's sparse reserve past it) rows that fail their checksums
        with pytest.raises(CorruptIndex, match="shorter than the database|does not match its checksum"):
            catalog.get("ix")
    finally:
        catalog.close()
