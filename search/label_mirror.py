"""The embedded back end's labels in memory: which keys are rated, hidden and tagged, and
the current id of each such key. Only labelled keys take room, so an index of millions with a
few thousand reviewed items costs a few thousand entries.

Loaded from the database at start-up (through a partial index: O(labelled), never O(items)),
changed by the store after each commit (under its memory lock), and compared with the database
by `check`. Searches turn a label filter into an IdFilter (sorted id arrays) without a query:
hidden ids out, or only the ids a rating or tags select. A labelled key that is replaced gets
a new id, which the store passes on (`track`).
"""

from __future__ import annotations

import numpy as np

from .errors import TagNotFound
from .labels import LabelFilter
from .store_view import IdFilter


class LabelMirror:
    def __init__(self) -> None:
        self.rating: dict[str, int] = {}  # rated keys only (rating > 0)
        self.hidden: set[str] = set()
        self.tags_of: dict[str, set[int]] = {}
        self.members: dict[int, set[str]] = {}
        self.names: dict[int, str] = {}  # tag id -> name
        self.ids: dict[str, int] = {}  # tag name -> id
        self.id_of: dict[str, int] = {}  # labelled key -> its item's current id
        self.version = 0  # bumped by every change (the hidden-ids cache below)
        self._hidden_ids: tuple[int, np.ndarray] | None = None

    # -- changes (after the transaction committed) ------------------------------------------
    def add_tag(self, tag_id: int, name: str) -> None:
        self.version += 1
        self.names[tag_id] = name
        self.ids[name] = tag_id
        self.members.setdefault(tag_id, set())

    def set_rating(self, key: str, rating: int) -> None:
        self.version += 1
        if rating:
            self.rating[key] = rating
        else:
            self.rating.pop(key, None)

    def set_hidden(self, key: str, hidden: bool) -> None:
        self.version += 1
        (self.hidden.add if hidden else self.hidden.discard)(key)

    def add_tags(self, key: str, tag_ids) -> None:
        self.version += 1
        for t in tag_ids:
            self.tags_of.setdefault(key, set()).add(t)
            self.members[t].add(key)

    def remove_tags(self, key: str, tag_ids) -> None:
        self.version += 1
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
        self.id_of.pop(key, None)

    def labelled(self, key: str) -> bool:
        return key in self.rating or key in self.hidden or key in self.tags_of

    def track(self, pairs) -> None:
        """(key, id) of items just written or labelled: remember the ids of labelled keys."""
        for key, id_ in pairs:
            if self.labelled(key):
                if self.id_of.get(key) != id_:
                    self.id_of[key] = int(id_)
                    self.version += 1
            elif self.id_of.pop(key, None) is not None:
                self.version += 1

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

    def id_filter(self, f: LabelFilter) -> IdFilter | None:
        """The ids the filter keeps, None for all (the caller holds the store's memory lock)."""
        self.check_tag_ids(f.tag_ids)
        if f.selective:
            keys = self.selected_keys(f)
            if not f.include_hidden:
                keys -= self.hidden
            return IdFilter(allowed=self._ids(keys))
        if not f.include_hidden and self.hidden:
            if self._hidden_ids is None or self._hidden_ids[0] != self.version:
                self._hidden_ids = (self.version, self._ids(self.hidden))
            return IdFilter(excluded=self._hidden_ids[1])
        return None

    def _ids(self, keys) -> np.ndarray:
        return np.unique(np.fromiter((self.id_of[k] for k in keys if k in self.id_of), np.int64))

    def snapshot(self) -> tuple[dict, set, dict, dict]:
        """(ratings, hidden, key -> tag ids, tag id -> name), to compare with the database."""
        return dict(self.rating), set(self.hidden), {k: set(v) for k, v in self.tags_of.items() if v}, dict(self.names)
