"""kill -9 at random moments while a process streams acknowledged writes into an index, on
both back ends: after a restart, every acknowledged item is there with its exact vector,
every acknowledged delete is gone, and nothing appears that was never written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.search.backends import open_indexes
from tests.search.helpers import BINDING, vectors_for

pytestmark = pytest.mark.slow


def run_and_kill(place: str, seed: int, first_key: int, after_acks: int) -> tuple[set[str], set[str], set[str]]:
    """Start the writer, SIGKILL it once `after_acks` calls were acknowledged (plus a random
    delay, so the kill lands anywhere in a call); return the acknowledged keys, the
    acknowledged deletes and the deletes that were started (in flight at the kill, maybe)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.search.crash_writer", place, str(seed), str(first_key)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    acked, deleted, started = set(), set(), set()

    def record(parts: list[str]) -> None:
        if parts[0] == "ACK":
            acked.update(str(i) for i in range(int(parts[1]), int(parts[2]) + 1))
        elif parts[0] == "DEL":
            deleted.add(parts[1])
        elif parts[0] == "DELETING":
            started.add(parts[1])

    try:
        assert proc.stdout.readline().strip() == "READY"
        seen = 0
        while seen < after_acks:
            line = proc.stdout.readline().split()
            assert line, "the writer died on its own"
            record(line)
            seen += line[0] == "ACK"
        time.sleep(np.random.default_rng(seed).uniform(0, 0.02))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for line in proc.stdout.read().splitlines():  # acknowledged before the kill landed
            record(line.split())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return acked, deleted, started


def test_acknowledged_writes_survive_kill_9(place):
    acked_all, deleted_all, started_all = set(), set(), set()
    for round_, after in enumerate([3, 25, 60, 11, 90]):
        acked, deleted, started = run_and_kill(place, seed=round_, first_key=100_000 * round_, after_acks=after)
        acked_all |= acked
        deleted_all |= deleted
        started_all |= started
        registry = open_indexes(place)
        store = registry.get("ix", BINDING)
        try:
            live = set(store.keys())
            assert (acked_all - started_all) <= live, f"round {round_}: acknowledged items lost"
            assert not (live & deleted_all), f"round {round_}: acknowledged deletes came back"
            items = store.get(sorted(live), with_vectors=True)
            expected = store.store.stored_vectors(vectors_for([it.key for it in items]))
            for item, vec in zip(items, expected):
                np.testing.assert_array_equal(item.vector, vec)  # exactly its own vector
                assert item.metadata == {"n": int(item.key)}
            assert store.check().ok
        finally:
            registry.close()
