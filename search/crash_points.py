"""Test-only crash points of the embedded index's writes (IMAGE_EMBED_TEST_INDEX_CRASH_AT).

A write of the embedded store passes three points, in this order:

    vectors_written   the new vectors are in the vector file (not yet fsync'd), nothing committed
    vectors_synced    the vector file is fsync'd, the database transaction not yet committed
    committed         the transaction is committed (durable), the call not yet acknowledged

With IMAGE_EMBED_TEST_INDEX_CRASH_AT=POINT (or POINT:N, the N-th time that point is reached),
the process kills itself with SIGKILL there, as a power cut or `kill -9` would land between
the two files' writes. tests/search/test_vector_file_crash.py uses it; unset (the default),
each point costs one comparison.
"""

from __future__ import annotations

import functools
import os
import signal

POINTS = ("vectors_written", "vectors_synced", "committed")
_seen: dict[str, int] = {}


@functools.cache
def _target() -> tuple[str, int] | None:
    from config.settings import load_settings

    value = load_settings().test_index_crash_at
    if not value:
        return None
    point, _, nth = value.partition(":")
    return point, int(nth or 1)


def reached(point: str) -> None:
    """Die here when the test asked for it (SIGKILL: no cleanup, no flush, no atexit)."""
    target = _target()
    if target is None or target[0] != point:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _seen[point] == target[1]:
        os.kill(os.getpid(), signal.SIGKILL)
