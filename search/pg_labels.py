"""Labels and perceptual hashes of a PostgreSQL index (pg_store.py), in its own tables:

    image_embed_items_<id>       + rating smallint 0-5, hidden boolean, phash bigint (NULL: unknown)
    image_embed_tags_<id>        id (identity), name text UNIQUE
    image_embed_item_tags_<id>   (key, tag_id): key references the item ON DELETE CASCADE (and
                                 ON UPDATE), tag_id the tag; indexed by (tag_id, key)
    <items>_key_c                an index on key COLLATE "C": browse pages in code-point order,
                                 the order the embedded back end has, whatever the database's locale

Tables made before labels existed gain them when a server starts (`ensure`, idempotent).
Every write runs in the caller's transaction, so an item and its labels commit together.
"""

from __future__ import annotations

import numpy as np

from .errors import TagNotFound
from .labels import BrowseItem, BrowsePage, ItemLabels, LabelFilter


def tags_table(index_id: int) -> str:
    return f"image_embed_tags_{int(index_id)}"


def item_tags_table(index_id: int) -> str:
    return f"image_embed_item_tags_{int(index_id)}"


def ensure(conn, items: str, index_id: int) -> None:
    """The label columns, tables and indexes of one index (idempotent)."""
    tags, item_tags = tags_table(index_id), item_tags_table(index_id)
    conn.execute(
        f"ALTER TABLE {items} ADD COLUMN IF NOT EXISTS rating smallint NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5), "
        "ADD COLUMN IF NOT EXISTS hidden boolean NOT NULL DEFAULT false, ADD COLUMN IF NOT EXISTS phash bigint"
    )
    conn.execute(f"CREATE TABLE IF NOT EXISTS {tags} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE)")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {item_tags} (key text NOT NULL REFERENCES {items} (key) ON DELETE CASCADE ON UPDATE CASCADE, "
        f"tag_id bigint NOT NULL REFERENCES {tags} (id) ON DELETE CASCADE, PRIMARY KEY (key, tag_id))"
    )
    conn.execute(f"CREATE INDEX IF NOT EXISTS {item_tags}_by_tag ON {item_tags} (tag_id, key)")
    conn.execute(f'CREATE INDEX IF NOT EXISTS {items}_key_c ON {items} (key COLLATE "C")')


def drop(conn, index_id: int) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {item_tags_table(index_id)}, {tags_table(index_id)}")


def signed(phash: int | None) -> int | None:
    return None if phash is None else phash - (1 << 64) if phash >= 1 << 63 else phash


def unsigned(value: int | None) -> int | None:
    return None if value is None else value + (1 << 64) if value < 0 else value


class PgLabels:
    """The label statements of one index (`items` table, `index_id` naming the others)."""

    def __init__(self, items: str, index_id: int) -> None:
        self.items, self.tags, self.item_tags = items, tags_table(index_id), item_tags_table(index_id)

    # -- writes (in the caller's transaction) -------------------------------------------------
    def tag_ids(self, conn, names, create: bool) -> dict[str, int]:
        if not names:
            return {}
        if create:
            # only the new names: ON CONFLICT alone would use up an identity value per existing name
            conn.execute(
                f"INSERT INTO {self.tags} (name) SELECT n FROM unnest(%s::text[]) n "
                f"WHERE NOT EXISTS (SELECT 1 FROM {self.tags} t WHERE t.name = n) ON CONFLICT (name) DO NOTHING",
                (list(names),),
            )
        return dict(conn.execute(f"SELECT name, id FROM {self.tags} WHERE name = ANY(%s)", (list(names),)).fetchall())

    def write_item_labels(self, conn, keys: list[str], labels: list[ItemLabels | None]) -> None:
        for key, lab in zip(keys, labels):
            if lab is None:
                continue
            if lab.rating is not None or lab.hidden is not None:
                conn.execute(
                    f"UPDATE {self.items} SET rating = coalesce(%s, rating), hidden = coalesce(%s, hidden) WHERE key = %s",
                    (lab.rating, lab.hidden, key),
                )
            if lab.tags is not None:
                ids = self.tag_ids(conn, lab.tags, True)
                conn.execute(f"DELETE FROM {self.item_tags} WHERE key = %s", (key,))
                conn.execute(
                    f"INSERT INTO {self.item_tags} (key, tag_id) SELECT %s, unnest(%s::bigint[])", (key, [ids[n] for n in lab.tags])
                )

    def set_rating(self, conn, keys: list[str], rating: int) -> set[str]:
        rows = conn.execute(f"UPDATE {self.items} SET rating = %s WHERE key = ANY(%s) RETURNING key", (rating, keys)).fetchall()
        return {r[0] for r in rows}

    def tag_items(self, conn, keys: list[str], add, remove, hidden: bool | None) -> set[str]:
        # lock the rows first: a key deleted meanwhile is reported missing, not half-tagged
        found = {r[0] for r in conn.execute(f"SELECT key FROM {self.items} WHERE key = ANY(%s) FOR UPDATE", (keys,))}
        present = [k for k in keys if k in found]
        if not present:
            return found
        if add:
            ids = list(self.tag_ids(conn, add, True).values())
            conn.execute(
                f"INSERT INTO {self.item_tags} (key, tag_id) SELECT k, t FROM unnest(%s::text[]) k CROSS JOIN unnest(%s::bigint[]) t "
                "ON CONFLICT DO NOTHING",
                (present, ids),
            )
        if remove:
            ids = list(self.tag_ids(conn, remove, False).values())
            conn.execute(f"DELETE FROM {self.item_tags} WHERE key = ANY(%s) AND tag_id = ANY(%s)", (present, ids))
        if hidden is not None:
            conn.execute(f"UPDATE {self.items} SET hidden = %s WHERE key = ANY(%s)", (hidden, present))
        return found

    # -- reads --------------------------------------------------------------------------------
    def check_tag_ids(self, conn, tag_ids) -> None:
        if not tag_ids:
            return
        known = {r[0] for r in conn.execute(f"SELECT id FROM {self.tags} WHERE id = ANY(%s)", (list(tag_ids),))}
        unknown = [t for t in tag_ids if t not in known]
        if unknown:
            raise TagNotFound(f"no tag with id {unknown[0]} in this index (GET /tags lists them)")

    def where(self, f: LabelFilter | None, params: dict, prefix: str = "") -> list[str]:
        """SQL conditions of a label filter on the items table (aliased `prefix`), with their
        parameters added to `params`."""
        f = f or LabelFilter()
        clauses = []
        if not f.include_hidden:
            clauses.append(f"NOT {prefix}hidden")
        if f.min_rating:
            params["min_rating"] = f.min_rating
            clauses.append(f"{prefix}rating >= %(min_rating)s")
        if f.tag_ids:
            params["tag_ids"], params["n_tags"] = list(f.tag_ids), len(f.tag_ids)
            clauses.append(
                f"{prefix}key IN (SELECT key FROM {self.item_tags} WHERE tag_id = ANY(%(tag_ids)s) GROUP BY key "
                "HAVING count(*) = %(n_tags)s)"
            )
        return clauses

    def tags_of(self, conn, keys: list[str]) -> dict[str, list[tuple[int, str]]]:
        out: dict[str, list[tuple[int, str]]] = {}
        for key, tag_id, name in conn.execute(
            f"SELECT it.key, t.id, t.name FROM {self.item_tags} it JOIN {self.tags} t ON t.id = it.tag_id "
            "WHERE it.key = ANY(%s) ORDER BY t.id",
            (keys,),
        ):
            out.setdefault(key, []).append((tag_id, name))
        return out

    def browse(self, conn, f: LabelFilter, offset: int, limit: int) -> BrowsePage:
        self.check_tag_ids(conn, f.tag_ids)
        params: dict = {"limit": limit, "offset": offset}
        clauses = self.where(f, params)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        (total,) = conn.execute(f"SELECT count(*) FROM {self.items} {where}", params).fetchone()
        rows = conn.execute(
            f"SELECT key, rating, hidden, metadata, thumbnail IS NOT NULL FROM {self.items} {where} "
            'ORDER BY key COLLATE "C" LIMIT %(limit)s OFFSET %(offset)s',
            params,
        ).fetchall()
        tags = self.tags_of(conn, [r[0] for r in rows])
        return BrowsePage(total=int(total), items=[BrowseItem(k, r, h, tags.get(k, []), m, t) for k, r, h, m, t in rows])

    def tag_counts(self, conn) -> list[tuple[int, str, int]]:
        return [
            (int(i), n, int(c))
            for i, n, c in conn.execute(
                f"SELECT t.id, t.name, count(it.key) FROM {self.tags} t LEFT JOIN {self.item_tags} it ON it.tag_id = t.id "
                "GROUP BY t.id, t.name ORDER BY t.id"
            )
        ]

    def phashes(self, conn, include_hidden: bool) -> tuple[list[str], np.ndarray]:
        hidden = "" if include_hidden else " AND NOT hidden"
        rows = conn.execute(f"SELECT key, phash FROM {self.items} WHERE phash IS NOT NULL{hidden}").fetchall()
        return [r[0] for r in rows], np.fromiter((r[1] for r in rows), np.int64, len(rows)).view(np.uint64)

    def check(self, conn) -> list[str]:
        """What the constraints already guarantee, checked again (a restored dump, a manual edit)."""
        (orphans, unknown) = conn.execute(
            f"SELECT count(*) FILTER (WHERE i.key IS NULL), count(*) FILTER (WHERE t.id IS NULL) FROM {self.item_tags} it "
            f"LEFT JOIN {self.items} i ON i.key = it.key LEFT JOIN {self.tags} t ON t.id = it.tag_id"
        ).fetchone()
        (bad,) = conn.execute(f"SELECT count(*) FROM {self.items} WHERE rating NOT BETWEEN 0 AND 5").fetchone()
        problems = []
        if orphans:
            problems.append(f"{orphans} item tags belong to no item")
        if unknown:
            problems.append(f"{unknown} item tags name no tag")
        if bad:
            problems.append(f"{bad} items have a rating out of range")
        return problems
