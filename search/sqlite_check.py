"""The embedded store's self-check (`SqliteStore.check`, run at start-up and by verify_index):
the memory agrees with itself and with the database, and the labels are sound."""

from __future__ import annotations

import numpy as np

from . import sqlite_labels as labels_sql
from .storage import CheckReport, check_vectors


def check_store(store, vectors: bool = True) -> CheckReport:
    """Every key maps to exactly one live row holding that key; ids strictly increase below
    next_id; the database holds as many items; thumbnails and tags belong to items and the
    labels in memory are the database's; optionally, every live vector is finite (unit
    length). The caller holds the store's write lock."""
    t = store.table
    report = CheckReport(count=t.count)
    alive = t.alive[: t.n]
    if int(alive.sum()) != len(t.key_to_row):
        report.problems.append(f"{int(alive.sum())} live rows but {len(t.key_to_row)} keys")
    for key, row in t.key_to_row.items():
        if not (0 <= row < t.n) or not alive[row] or t.keys[row] != key:
            report.problems.append(f"key {key!r} points at row {row}, which holds {t.keys[row] if 0 <= row < t.n else None!r}")
            if len(report.problems) > 20:
                break
    ids = t.ids[: t.n]
    if t.n and (np.any(np.diff(ids) <= 0) or ids[-1] >= t.next_id or ids[0] < 0):
        report.problems.append("internal ids are not strictly increasing below next_id")
    if not (len(t.keys) == len(t.metas) == len(t.sources) == t.n):
        report.problems.append("row columns have different lengths")
    conn = store.conn
    stored = conn.execute("SELECT count(*) FROM items").fetchone()[0] if conn else t.count
    if stored != t.count:
        report.problems.append(f"the database holds {stored} items, the memory {t.count}")
    if conn is not None:
        (orphans,) = conn.execute("SELECT count(*) FROM thumbnails WHERE key NOT IN (SELECT key FROM items)").fetchone()
        if orphans:
            report.problems.append(f"{orphans} thumbnails belong to no item")
        report.problems += labels_sql.check(conn, store.labels)
    if vectors and t.n:
        check_vectors(store.binding, t.vectors[: t.n][alive], report)
    return report
