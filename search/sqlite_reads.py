"""Reads of the embedded index's items from SQLite, for the few rows a call needs: the keys
and metadata of a search's hits (by id, the rowid: a B-tree lookup each), items by key, and
the ids whose metadata matches a filter.

A metadata filter (queries.py: JSON equality per field) is first narrowed in SQL with
json_extract / json_type to a superset of the matching rows, then checked exactly in Python
(`matches`: true is not 1, ["a"] is not ["a", "b"]), so SQL's looser equality never decides.
"""

from __future__ import annotations

import json
import re
import sqlite3

import numpy as np

from .queries import matches

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
