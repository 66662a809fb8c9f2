"""What a search asks, checked the same way for both back ends: the page (top_k, offset),
the metadata filter (equality per field), and a query made of examples (the
"centroid of approved images", minus the rejected ones). `SearchIndex` is what both back
ends' searchable indexes share (collection.py, pg_index.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidItem, KeyNotFound

MAX_TOP_K = 10_000
MAX_OFFSET = 10_000
MAX_EXAMPLES = 1_000


@dataclass(frozen=True)
class Hit:
    key: str
    score: float
    metadata: dict | None

    def to_json(self) -> dict:
        return {"key": self.key, "score": self.score, "metadata": self.metadata}


def check_page(top_k, offset) -> int:
    """offset + top_k: how many best hits a search must find."""
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
        raise InvalidItem(f"top_k must be an integer from 1 to {MAX_TOP_K}")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidItem(f"offset must be an integer from 0 to {MAX_OFFSET}")
    return offset + top_k


def _same(a, b) -> bool:
    """JSON equality: True is not 1 here."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def matches(meta: dict | None, where: dict | None) -> bool:
    if not where:
        return True
    return isinstance(meta, dict) and all(f in meta and _same(meta[f], v) for f, v in where.items())


def check_filter(where) -> dict | None:
    if where is None or where == {}:
        return None
    if not isinstance(where, dict) or not all(isinstance(k, str) for k in where):
        raise InvalidItem("a filter is a JSON object of metadata field -> value (equality)")
    return where


def example_keys(key, keys, negative_keys) -> tuple[list[str], list[str]]:
    """The positive and negative example keys of a `similar` call (`key` or `keys`)."""
    positive = ([key] if key else []) + list(keys or [])
    negative = list(negative_keys or [])
    if not positive:
        raise InvalidItem("send `key` or `keys`: the items to find similar ones to")
    if len(positive) + len(negative) > MAX_EXAMPLES:
        raise InvalidItem(f"at most {MAX_EXAMPLES} example keys in one call")
    return list(dict.fromkeys(positive)), list(dict.fromkeys(negative))


def example_query(index: str, positive: list[str], negative: list[str], items) -> np.ndarray:
    """The normalized mean of the positive examples' vectors minus the mean of the negative
    ones. `items` are the stored items of positive + negative, None where a key is absent."""
    absent = [k for k, it in zip(positive + negative, items) if it is None]
    if absent:
        raise KeyNotFound(f"no item with key {absent[0]!r} in index {index!r}" + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""))
    vecs = np.stack([it.vector for it in items]).astype(np.float32)
    query = vecs[: len(positive)].mean(axis=0)
    if negative:
        query = query - vecs[len(positive) :].mean(axis=0)
    norm = float(np.linalg.norm(query))
    if not np.isfinite(norm) or norm < 1e-6:
        raise InvalidItem("the examples cancel out (their mean minus the negative examples' mean is zero)")
    return (query / norm).astype(np.float32)


def groups_of_pairs(pairs: list[dict]) -> list[dict]:
    """Connected groups of the keys of `pairs` (a, b), largest first, keys sorted."""
    parent: dict[str, str] = {}

    def root(k: str) -> str:
        while parent.setdefault(k, k) != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for p in pairs:
        ra, rb = root(p["a"]), root(p["b"])
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for k in list(parent):
        members.setdefault(root(k), []).append(k)
    out = [{"size": len(ks), "items": [{"key": k} for k in sorted(ks)]} for ks in members.values()]
    return sorted(out, key=lambda g: (-g["size"], g["items"][0]["key"]))


class SearchIndex:
    """A searchable index over a Storage (`self.store`): reads delegate to it; `similar`
    turns examples into a query for the back end's own `search`."""

    name: str

    def search(self, queries, top_k=10, min_score=None, where=None, exclude=None, offset=0, labels=None) -> list[list[Hit]]:
        raise NotImplementedError

    def similar(
        self, key=None, top_k: int = 10, min_score=None, where=None, *, keys=None, negative_keys=None, offset: int = 0, labels=None
    ):
        """Items like the examples (`key`, or the normalized mean of `keys` minus that of
        `negative_keys`), the examples themselves excluded."""
        positive, negative = example_keys(key, keys, negative_keys)
        query = example_query(self.name, positive, negative, self.store.get(positive + negative, with_vectors=True))
        return self.search(query[None], top_k, min_score, where, exclude=[set(positive + negative)], offset=offset, labels=labels)[0]

    # -- labels and duplicates (the store does the work) ---------------------------------------
    def set_rating(self, keys, rating: int):
        return self.store.set_rating(keys, rating)

    def tag_items(self, keys, add=(), remove=(), hidden=None):
        return self.store.tag_items(keys, add, remove, hidden)

    def tags(self) -> list[tuple[int, str, int]]:
        return self.store.tags()

    def browse(self, f, page: int = 1, per_page: int = 24):
        from .labels import check_browse_page

        return self.store.browse(f, check_browse_page(page, per_page), per_page)

    def clip_duplicates(self, threshold: float, limit: int, neighbors: int, include_hidden: bool) -> list[dict]:
        raise NotImplementedError

    def duplicates(
        self, method: str = "clip", threshold: float = 0.95, max_distance: int = 5, limit: int = 100, neighbors: int = 10,
        include_hidden: bool = False,
    ) -> dict:
        """{"pairs", "groups"}: by CLIP cosine (`threshold`; pairs most similar first, groups
        joined from those pairs) or by perceptual hash (`max_distance` bits; groups, and the
        pairs of each group's first item with the others), hidden items only with `include_hidden`."""
        from . import phash_groups

        if method == "clip":
            pairs = self.clip_duplicates(threshold, limit, neighbors, include_hidden)
            return {"pairs": pairs, "groups": groups_of_pairs(pairs)}
        if method != "phash":
            raise InvalidItem(f"method is \"clip\" or \"phash\", not {method!r:.40}")
        phash_groups.check_max_distance(max_distance)
        keys, hashes = self.store.phashes(include_hidden)
        found = phash_groups.groups(keys, hashes, max_distance)
        pairs = [
            {"a": g["items"][0]["key"], "b": it["key"], "distance": it["distance"]} for g in found for it in g["items"][1:]
        ]
        return {"pairs": pairs[:limit], "groups": found[:limit], "hashed": len(keys)}

    def get(self, keys, with_vectors: bool = False):
        return self.store.get(keys, with_vectors)

    def keys(self) -> list[str]:
        return self.store.keys()

    def thumbnail(self, key: str) -> bytes | None:
        """The item's WebP thumbnail, None without one; KeyNotFound for no such item."""
        return self.store.thumbnail(key)

    @property
    def count(self) -> int:
        return self.store.count

    def check(self):
        return self.store.check()
