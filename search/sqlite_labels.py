"""Labels and perceptual hashes in the embedded index's SQLite database (sqlite_store.py).

    items.rating   INTEGER 0-5 (0: not rated)      items.hidden  INTEGER 0/1
    items.phash    INTEGER (the 64-bit pHash as a signed integer), NULL when unknown
    tags           (id INTEGER PRIMARY KEY, name TEXT UNIQUE)
    item_tags      (key, tag_id), one row per tag of an item; by key, like thumbnails
    items_browse   an index on items (key, hidden, rating): browse pages in key order and
                   their counts read it alone, never the rows
    items_labelled a partial index of the rated or hidden items: loading the labels at
                   start-up reads those, not every item

An index made before labels existed gains the columns and tables when it is opened
(`migrate`, additive: nothing is rewritten). Every function here runs inside the store's
write transaction, or under its lock for reads; the ones that write return what to apply to
the in-memory mirror (label_mirror.py) once the transaction committed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import numpy as np

from .label_mirror import LabelMirror
from .labels import BrowseItem, BrowsePage, ItemLabels, LabelFilter

Apply = Callable[[LabelMirror], None]

TABLES = """
CREATE TABLE IF NOT EXISTS tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS item_tags (key TEXT NOT NULL, tag_id INTEGER NOT NULL, PRIMARY KEY (key, tag_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS item_tags_by_tag ON item_tags (tag_id, key);
"""
COLUMNS = {
    "rating": "INTEGER NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5)",
    "hidden": "INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1))",
    "phash": "INTEGER",
}
BROWSE_INDEX = "CREATE INDEX IF NOT EXISTS items_browse ON items (key, hidden, rating)"
LABELLED = "rating > 0 OR hidden = 1"  # as written here, so that SQLite uses the partial index
LABELLED_INDEX = f"CREATE INDEX IF NOT EXISTS items_labelled ON items (key) WHERE {LABELLED}"
CHUNK = 500  # keys per IN (...) list


def migrate(conn: sqlite3.Connection) -> None:
    """The label columns and tables, added to an index that predates them (in a transaction)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
    for name, decl in COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE items ADD COLUMN {name} {decl}")
    for statement in TABLES.strip().split(";\n"):
        conn.execute(statement)
    conn.execute(BROWSE_INDEX)
    conn.execute(LABELLED_INDEX)


def load(conn: sqlite3.Connection) -> LabelMirror:
    """The labels and the ids of the labelled items: O(labelled), through the partial index."""
    mirror = LabelMirror()
    for tag_id, name in conn.execute("SELECT id, name FROM tags"):
        mirror.add_tag(tag_id, name)
    for key, id_, rating, hidden in conn.execute(f"SELECT key, id, rating, hidden FROM items WHERE {LABELLED}"):
        mirror.set_rating(key, rating)
        mirror.set_hidden(key, bool(hidden))
        mirror.id_of[key] = id_
    for key, tag_id, id_ in conn.execute("SELECT it.key, it.tag_id, i.id FROM item_tags it JOIN items i ON i.key = it.key"):
        mirror.tags_of.setdefault(key, set()).add(tag_id)
        mirror.members.setdefault(tag_id, set()).add(key)
        mirror.id_of[key] = id_
    return mirror


def tags_of(conn, keys: list[str]) -> dict[str, list[tuple[int, str]]]:
    """key -> [(tag id, name)] by tag id, for these keys (from the database)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for start in range(0, len(keys), CHUNK):
        part = keys[start : start + CHUNK]
        marks = ",".join("?" * len(part))
        for key, tag_id, name in conn.execute(
            f"SELECT it.key, t.id, t.name FROM item_tags it JOIN tags t ON t.id = it.tag_id WHERE it.key IN ({marks}) ORDER BY t.id",
            part,
        ):
            out.setdefault(key, []).append((tag_id, name))
    return out


def signed(phash: int | None) -> int | None:
    """A 64-bit hash as SQLite's signed INTEGER (and back with `unsigned`)."""
    return None if phash is None else phash - (1 << 64) if phash >= 1 << 63 else phash


def unsigned(value: int | None) -> int | None:
    return None if value is None else value + (1 << 64) if value < 0 else value


# -- writes (inside the store's transaction) ------------------------------------------------
def tag_ids(conn: sqlite3.Connection, names, mirror: LabelMirror, create: bool, applies: list[Apply]) -> dict[str, int]:
    """name -> id of `names`; missing names are created (when `create`) or left out."""
    out = {n: mirror.ids[n] for n in names if n in mirror.ids}
    for name in names:
        if name in out or not create:
            continue
        # perhaps made earlier in this transaction (the mirror learns of it at the commit)
        row = conn.execute("SELECT id FROM tags WHERE name = ?", (name,)).fetchone()
        if row is None:
            row = conn.execute("INSERT INTO tags (name) VALUES (?) RETURNING id", (name,)).fetchone()
            applies.append(lambda m, t=row[0], n=name: m.add_tag(t, n))
        out[name] = row[0]
    return out


def write_item_labels(conn, keys: list[str], labels: list[ItemLabels | None], mirror: LabelMirror) -> list[Apply]:
    """Labels given with upserted items (None fields: unchanged)."""
    applies: list[Apply] = []
    for key, lab in zip(keys, labels):
        if lab is None:
            continue
        if lab.rating is not None:
            conn.execute("UPDATE items SET rating = ? WHERE key = ?", (lab.rating, key))
            applies.append(lambda m, k=key, r=lab.rating: m.set_rating(k, r))
        if lab.hidden is not None:
            conn.execute("UPDATE items SET hidden = ? WHERE key = ?", (int(lab.hidden), key))
            applies.append(lambda m, k=key, h=lab.hidden: m.set_hidden(k, h))
        if lab.tags is not None:
            ids = tag_ids(conn, lab.tags, mirror, True, applies)
            conn.execute("DELETE FROM item_tags WHERE key = ?", (key,))
            conn.executemany("INSERT INTO item_tags (key, tag_id) VALUES (?, ?)", [(key, ids[n]) for n in lab.tags])
            applies.append(lambda m, k=key, t=[ids[n] for n in lab.tags]: m.set_tags(k, t))
    return applies


def set_rating(conn, keys: list[str], rating: int) -> list[Apply]:
    conn.executemany("UPDATE items SET rating = ? WHERE key = ?", [(rating, k) for k in keys])
    return [lambda m: [m.set_rating(k, rating) for k in keys]]


def tag_items(conn, keys: list[str], add, remove, hidden: bool | None, mirror: LabelMirror) -> list[Apply]:
    applies: list[Apply] = []
    if add:
        added = list(tag_ids(conn, add, mirror, True, applies).values())
        conn.executemany("INSERT OR IGNORE INTO item_tags (key, tag_id) VALUES (?, ?)", [(k, t) for k in keys for t in added])
        applies.append(lambda m: [m.add_tags(k, added) for k in keys])
    if remove:
        removed = list(tag_ids(conn, remove, mirror, False, applies).values())
        conn.executemany("DELETE FROM item_tags WHERE key = ? AND tag_id = ?", [(k, t) for k in keys for t in removed])
        applies.append(lambda m: [m.remove_tags(k, removed) for k in keys])
    if hidden is not None:
        conn.executemany("UPDATE items SET hidden = ? WHERE key = ?", [(int(hidden), k) for k in keys])
        applies.append(lambda m: [m.set_hidden(k, hidden) for k in keys])
    return applies


def forget(conn, keys: list[str]) -> list[Apply]:
    """Deleted items: their tags go with them (rating and hidden are columns of the row)."""
    conn.executemany("DELETE FROM item_tags WHERE key = ?", [(k,) for k in keys])
    return [lambda m: [m.forget(k) for k in keys]]


# -- reads (under the store's lock) -----------------------------------------------------------
def _where(f: LabelFilter) -> tuple[str, list]:
    clauses, params = [], []
    if not f.include_hidden:
        clauses.append("hidden = 0")
    if f.min_rating:
        clauses.append("rating >= ?")
        params.append(f.min_rating)
    if f.tag_ids:
        marks = ",".join("?" * len(f.tag_ids))
        clauses.append(f"key IN (SELECT key FROM item_tags WHERE tag_id IN ({marks}) GROUP BY key HAVING count(*) = ?)")
        params += [*f.tag_ids, len(f.tag_ids)]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def browse(conn, f: LabelFilter, offset: int, limit: int) -> BrowsePage:
    """Items in key order (SQLite's binary order: by code point), `limit` from `offset` on
    (the caller checked the tag ids)."""
    where, params = _where(f)
    (total,) = conn.execute(f"SELECT count(*) FROM items INDEXED BY items_browse{where}", params).fetchone()
    keys = [r[0] for r in conn.execute(f"SELECT key FROM items INDEXED BY items_browse{where} ORDER BY key LIMIT ? OFFSET ?", [*params, limit, offset])]
    rows = {}
    tags = tags_of(conn, keys)
    if keys:
        marks = ",".join("?" * len(keys))
        for key, rating, hidden, meta, thumb in conn.execute(
            f"SELECT key, rating, hidden, metadata, EXISTS (SELECT 1 FROM thumbnails t WHERE t.key = items.key) "
            f"FROM items WHERE key IN ({marks})",
            keys,
        ):
            rows[key] = BrowseItem(key, rating, bool(hidden), tags.get(key, []), None if meta is None else json.loads(meta), bool(thumb))
    return BrowsePage(total=total, items=[rows[k] for k in keys if k in rows])


def phashes(conn, include_hidden: bool) -> tuple[list[str], np.ndarray]:
    """(keys, hashes as uint64) of the items that have a pHash."""
    hidden = "" if include_hidden else " AND hidden = 0"
    rows = conn.execute(f"SELECT key, phash FROM items WHERE phash IS NOT NULL{hidden}").fetchall()
    keys = [r[0] for r in rows]
    return keys, np.fromiter((r[1] for r in rows), np.int64, len(rows)).view(np.uint64)


def check(conn, mirror: LabelMirror) -> list[str]:
    """The labels in the database are sound and the mirror holds exactly them."""
    problems = []
    (orphans,) = conn.execute("SELECT count(*) FROM item_tags WHERE key NOT IN (SELECT key FROM items)").fetchone()
    if orphans:
        problems.append(f"{orphans} item tags belong to no item")
    (unknown,) = conn.execute("SELECT count(*) FROM item_tags WHERE tag_id NOT IN (SELECT id FROM tags)").fetchone()
    if unknown:
        problems.append(f"{unknown} item tags name no tag")
    (bad,) = conn.execute("SELECT count(*) FROM items WHERE rating NOT BETWEEN 0 AND 5 OR hidden NOT IN (0, 1)").fetchone()
    if bad:
        problems.append(f"{bad} items have a rating or hidden flag out of range")
    loaded = load(conn)
    stored = loaded.snapshot()
    if stored != mirror.snapshot():
        names = ("ratings", "hidden flags", "item tags", "tag names")
        differ = [n for n, a, b in zip(names, stored, mirror.snapshot()) if a != b]
        problems.append(f"the labels in memory differ from the database ({', '.join(differ)})")
    elif loaded.id_of != mirror.id_of:
        problems.append("the ids of labelled items in memory differ from the database")
    return problems
