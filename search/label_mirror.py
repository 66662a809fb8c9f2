"""The embedded back end's labels in memory, beside the rows (table.py): which keys are
rated, hidden and tagged. Only labelled keys take room, so an index of millions with a few
thousand reviewed items costs a few thousand entries.

Loaded from the database at start-up, changed by the store after each commit (under its
write lock), and compared with the database by `check`. Searches use it to build a row mask
(`row_mask`) without a query: hidden rows out, or only the rows a rating or tags select.
"""

from __future__ import annotations

import numpy as np

from .errors import TagNotFound
from .labels import LabelFilter


class LabelMirror:
    def __init__(self) -> None:
        self.rating: dict[str, int] = {}  # rated keys only (rating > 0)
        self.hidden: set[str] = set()
        self.tags_of: dict[str, set[int]] = {}
        self.members: dict[int, set[str]] = {}
        self.names: dict[int, str] = {}  # tag id -> name
        self.ids: dict[str, int] = {}  # tag name -> id

    # -- changes (after the transaction committed) ------------------------------------------
    def add_tag(self, tag_id: int, name: str) -> None:
        self.names[tag_id] = name
        self.ids[name] = tag_id
        self.members.setdefault(tag_id, set())

    def set_rating(self, key: str, rating: int) -> None:
        if rating:
            self.rating[key] = rating
        else:
            self.rating.pop(key, None)

    def set_hidden(self, key: str, hidden: bool) -> None:
        (self.hidden.add if hidden else self.hidden.discard)(key)

    def add_tags(self, key: str, tag_ids) -> None:
        for t in tag_ids:
            self.tags_of.setdefault(key, set()).add(t)
            self.members[t].add(key)

    def remove_tags(self, key: str, tag_ids) -> None:
        mine = self.tags_of.get(key)
        if not mine:
            return
        for t in tag_ids:
            mine.discard(t)
            self.members.get(t, set()).discard(key)
        if not mine:
            del self.tags_of[key]

    def set_tags(self, key: str, tag_ids) -> None:
        self.remove_tags(key, list(self.tags_of.get(key, ())))
        self.add_tags(key, tag_ids)

    def forget(self, key: str) -> None:
        self.set_rating(key, 0)
        self.hidden.discard(key)
        self.remove_tags(key, list(self.tags_of.get(key, ())))

    # -- reading ----------------------------------------------------------------------------
    def labels_of(self, key: str) -> tuple[int, bool, list[tuple[int, str]]]:
        tags = sorted((t, self.names[t]) for t in self.tags_of.get(key, ()))
        return self.rating.get(key, 0), key in self.hidden, tags

    def tag_counts(self) -> list[tuple[int, str, int]]:
        return sorted((t, name, len(self.members.get(t, ()))) for t, name in self.names.items())

    def check_tag_ids(self, tag_ids) -> None:
        unknown = [t for t in tag_ids if t not in self.names]
        if unknown:
            raise TagNotFound(f"no tag with id {unknown[0]} in this index (GET /tags lists them)")

    def selected_keys(self, f: LabelFilter) -> set[str]:
        """The keys a selective filter keeps (hidden ones included; the caller drops them)."""
        sets = [self.members.get(t, set()) for t in f.tag_ids]
        if f.min_rating:
            sets.append({k for k, r in self.rating.items() if r >= f.min_rating})
        sets.sort(key=len)
        keys = set(sets[0])
        for other in sets[1:]:
            keys &= other
        return keys

    def row_mask(self, f: LabelFilter, key_to_row: dict[str, int], n: int) -> np.ndarray | None:
        """Rows [0, n) the filter keeps, None for all; `key_to_row` and `n` of one view (the
        caller holds the store's write lock, so they agree)."""
        self.check_tag_ids(f.tag_ids)
        if f.selective:
            keys = self.selected_keys(f)
            if not f.include_hidden:
                keys -= self.hidden
            mask = np.zeros(n, bool)
            rows = [key_to_row[k] for k in keys if k in key_to_row]
        elif not f.include_hidden and self.hidden:
            mask = np.ones(n, bool)
            rows = [key_to_row[k] for k in self.hidden if k in key_to_row]
        else:
            return None
        rows = np.asarray([r for r in rows if r < n], np.int64)
        mask[rows] = f.selective
        return mask

    def snapshot(self) -> tuple[dict, set, dict, dict]:
        """(ratings, hidden, key -> tag ids, tag id -> name), to compare with the database."""
        return dict(self.rating), set(self.hidden), {k: set(v) for k, v in self.tags_of.items() if v}, dict(self.names)
