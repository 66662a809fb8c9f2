"""Reads of the embedded index's items from SQLite, for the few rows a call needs: the keys
and metadata of a search's hits (by id, the rowid: a B-tree lookup each), items by key, and
the ids whose metadata matches a filter; and the store's reading APIs (`ItemReads`: get,
thumbnail, iterate, keys, browse, phashes), each one consistent read (sqlite_store.py).

A metadata filter (queries.py: JSON equality per field) is first narrowed in SQL with
json_extract / json_type to a superset of the matching rows, then checked exactly in Python
(`matches`: true is not 1, ["a"] is not ["a", "b"]), so SQL's looser equality never decides.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator

import numpy as np

from . import sqlite_labels as labels_sql
from .errors import KeyNotFound
from .labels import LabelFilter
from .queries import matches
from .storage import Item
from .store_view import View

CHUNK = 500  # ids or keys per IN (...) list
SCAN_CHUNK = 10_000
PLAIN_FIELD = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # written into a JSON path as is
INT64 = (-(2**63), 2**63)


def meta(text: str | None) -> dict | None:
    return None if text is None else json.loads(text)


def by_ids(conn: sqlite3.Connection, ids) -> dict[int, tuple[str, dict | None]]:
    """id -> (key, metadata) of the items among `ids` (absent ids left out)."""
    ids = [int(i) for i in ids]
    out = {}
    for start in range(0, len(ids), CHUNK):
        part = ids[start : start + CHUNK]
        marks = ",".join("?" * len(part))
        for id_, key, text in conn.execute(f"SELECT id, key, metadata FROM items WHERE id IN ({marks})", part):
            out[id_] = (key, meta(text))
    return out


def by_keys(conn: sqlite3.Connection, keys: list[str], columns: str = "id") -> dict[str, tuple]:
    """key -> (columns...) of the items among `keys`."""
    out = {}
    for start in range(0, len(keys), CHUNK):
        part = keys[start : start + CHUNK]
        marks = ",".join("?" * len(part))
        for row in conn.execute(f"SELECT key, {columns} FROM items WHERE key IN ({marks})", part):
            out[row[0]] = row[1:]
    return out


def prefilter(where: dict) -> tuple[str, list]:
    """An SQL condition that every item matching `where` meets (a superset: exactness is
    `matches`'s job)."""
    clauses, params = [], []
    for field, value in where.items():
        if not PLAIN_FIELD.match(field):
            continue  # Python alone decides this field
        path = f'$."{field}"'
        if value is None:
            clauses.append("json_type(metadata, ?) = 'null'")
            params.append(path)
        elif isinstance(value, bool):
            clauses.append("json_type(metadata, ?) = ?")
            params += [path, "true" if value else "false"]
        elif isinstance(value, str) or (isinstance(value, int) and INT64[0] <= value < INT64[1]) or isinstance(value, float):
            clauses.append("json_extract(metadata, ?) = ?")
            params += [path, value]
        else:  # objects, arrays, huge integers: the field must be there
            clauses.append("json_type(metadata, ?) IS NOT NULL")
            params.append(path)
    return (" AND ".join(clauses) or "metadata IS NOT NULL"), params


def where_ids(conn: sqlite3.Connection, where: dict, among: np.ndarray | None = None) -> np.ndarray:
    """Sorted ids of the items whose metadata matches `where` (among `among`, when given)."""
    found: list[int] = []
    if among is not None:
        for id_, (_, m) in by_ids(conn, among).items():
            if matches(m, where):
                found.append(id_)
    else:
        clause, params = prefilter(where)
        cur = conn.execute(f"SELECT id, metadata FROM items WHERE {clause}", params)
        while rows := cur.fetchmany(SCAN_CHUNK):
            found += [id_ for id_, text in rows if matches(meta(text), where)]
    return np.unique(np.asarray(found, np.int64))


class ItemReads:
    """The embedded store's reading APIs; `consistent_read` (sqlite_store.py) gives each the
    view and a connection whose read transaction sees the database as the view does."""

    def browse(self, f: LabelFilter, offset: int, limit: int):
        with self._mem_lock:
            self.labels.check_tag_ids(f.tag_ids)
        return self.consistent_read(lambda view, ids, conn: labels_sql.browse(conn, f, offset, limit), strict=False)

    def phashes(self, include_hidden: bool = False):
        return self.consistent_read(lambda view, ids, conn: labels_sql.phashes(conn, include_hidden), strict=False)

    def get(self, keys, with_vectors: bool = False) -> list[Item | None]:
        keys = list(keys)

        def read(view: View, _, conn) -> list[Item | None]:
            rows = by_keys(conn, keys, "id, metadata, source, rating, hidden")
            tags = labels_sql.tags_of(conn, list(rows))
            vecs = view.rows([r[0] for r in rows.values()]) if with_vectors and rows else None
            at = {k: i for i, k in enumerate(rows)}
            out: list[Item | None] = []
            for key in keys:
                r = rows.get(key)
                vec = None if r is None or vecs is None else vecs[at[key]].copy()
                out.append(None if r is None else Item(key, r[0], meta(r[1]), r[2], vec, r[3], bool(r[4]), [n for _, n in tags.get(key, [])]))
            return out

        return self.consistent_read(read)

    def thumbnail(self, key: str) -> bytes | None:
        def read(view, _, conn):
            if not conn.execute("SELECT EXISTS (SELECT 1 FROM items WHERE key = ?)", (key,)).fetchone()[0]:
                raise KeyNotFound(f"index {self.name!r} has no item {key!r}")
            row = conn.execute("SELECT webp FROM thumbnails WHERE key = ?", (key,)).fetchone()
            return None if row is None else bytes(row[0])

        return self.consistent_read(read, strict=False)

    def iterate(self, batch: int = 10_000) -> Iterator[list[Item]]:
        """Every live item with its vector, in id order, `batch` at a time (each batch one
        consistent read of the database and the vector file)."""
        last = -1

        def read(view: View, _, conn) -> list[Item]:
            rows = conn.execute(
                "SELECT id, key, metadata, source, rating, hidden, phash FROM items WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            tags = labels_sql.tags_of(conn, [r[1] for r in rows])
            vecs = view.rows([r[0] for r in rows]) if rows else None
            return [
                Item(k, i, meta(m), s, vecs[j].copy(), r, bool(h), [n for _, n in tags.get(k, [])], labels_sql.unsigned(p))
                for j, (i, k, m, s, r, h, p) in enumerate(rows)
            ]

        while items := self.consistent_read(read):  # strict: a row that died meanwhile may be punched
            yield items
            last = items[-1].id

    def keys(self) -> list[str]:
        return self.consistent_read(lambda view, ids, conn: [r[0] for r in conn.execute("SELECT key FROM items ORDER BY id")], strict=False)

