"""What a person adds to an item: a rating (0-5, 0 = not rated), tags (an integer id and a
unique name each) and a hidden flag. Checked here the same way for both back ends.

    ItemLabels    labels written with an item (upsert): None leaves that label as it is
    LabelFilter   what browse and search keep: min_rating, tag_ids (all of them), include_hidden
    BrowsePage    one page of browse: total, and the items with their labels

Labels belong to the key: replacing an item's vector (indexing the same image again, a new
model's vectors) keeps its rating, tags and hidden flag; deleting the item deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InvalidItem, InvalidRating

MAX_RATING = 5
MAX_TAG_CHARS = 64
MAX_TAGS_PER_CALL = 100
MAX_PER_PAGE = 200
MAX_PAGE = 1_000_000


def check_rating(rating) -> int:
    if not isinstance(rating, int) or isinstance(rating, bool) or not 0 <= rating <= MAX_RATING:
        raise InvalidRating(f"a rating is an integer from 0 (not rated) to {MAX_RATING}, not {rating!r:.40}")
    return rating


def check_tag_name(name) -> str:
    """A tag name: 1-64 characters after trimming, no control characters."""
    if not isinstance(name, str):
        raise InvalidItem(f"a tag name is a string, not {type(name).__name__}")
    name = name.strip()
    if not name or len(name) > MAX_TAG_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidItem(f"a tag name has 1 to {MAX_TAG_CHARS} characters without control characters: {name!r:.80}")
    return name


def check_tag_names(names) -> list[str]:
    names = list(dict.fromkeys(check_tag_name(n) for n in (names or ())))
    if len(names) > MAX_TAGS_PER_CALL:
        raise InvalidItem(f"at most {MAX_TAGS_PER_CALL} tag names in one call")
    return names


def check_tag_ids(tag_ids) -> tuple[int, ...]:
    ids = tuple(dict.fromkeys(tag_ids or ()))
    if any(not isinstance(t, int) or isinstance(t, bool) or t < 1 for t in ids):
        raise InvalidItem("tag ids are positive integers")
    if len(ids) > MAX_TAGS_PER_CALL:
        raise InvalidItem(f"at most {MAX_TAGS_PER_CALL} tag ids in one filter")
    return ids


@dataclass(frozen=True)
class ItemLabels:
    """Labels written with an item; None leaves that label unchanged (kept from before)."""

    rating: int | None = None
    hidden: bool | None = None
    tags: tuple[str, ...] | None = None  # names: the item's tags become exactly these

    def checked(self) -> "ItemLabels":
        rating = None if self.rating is None else check_rating(self.rating)
        tags = None if self.tags is None else tuple(check_tag_names(self.tags))
        if self.hidden is not None and not isinstance(self.hidden, bool):
            raise InvalidItem("hidden is true or false")
        return ItemLabels(rating, self.hidden, tags)


def prepare_labels(labels, n: int) -> list[ItemLabels | None]:
    if labels is None:
        return [None] * n
    if len(labels) != n:
        raise InvalidItem(f"{len(labels)} label entries for {n} items")
    return [None if lab is None else lab.checked() for lab in labels]


@dataclass(frozen=True)
class LabelFilter:
    """Keep items rated at least `min_rating` that carry every tag of `tag_ids`; hidden items
    only with `include_hidden`."""

    min_rating: int = 0
    tag_ids: tuple[int, ...] = ()
    include_hidden: bool = False

    @classmethod
    def of(cls, min_rating=0, tag_ids=(), include_hidden=False) -> "LabelFilter":
        if not isinstance(include_hidden, bool):
            raise InvalidItem("include_hidden is true or false")
        return cls(check_rating(min_rating or 0), check_tag_ids(tag_ids), include_hidden)

    @classmethod
    def from_json(cls, data: dict | None) -> "LabelFilter":
        data = data or {}
        return cls.of(data.get("min_rating", 0), data.get("tag_ids", ()), data.get("include_hidden", False))

    def to_json(self) -> dict:
        return {"min_rating": self.min_rating, "tag_ids": list(self.tag_ids), "include_hidden": self.include_hidden}

    @property
    def selective(self) -> bool:
        """Only some items can pass (a rating or tags asked for), rather than all but the hidden."""
        return self.min_rating > 0 or bool(self.tag_ids)


def check_browse_page(page, per_page) -> int:
    """The offset of a browse page (pages count from 1; at most MAX_PER_PAGE items each)."""
    if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= MAX_PAGE:
        raise InvalidItem(f"page is an integer from 1 to {MAX_PAGE}")
    if not isinstance(per_page, int) or isinstance(per_page, bool) or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidItem(f"per_page is an integer from 1 to {MAX_PER_PAGE}")
    return (page - 1) * per_page


@dataclass
class BrowseItem:
    key: str
    rating: int
    hidden: bool
    tags: list[tuple[int, str]]
    metadata: dict | None
    has_thumbnail: bool

    def to_json(self) -> dict:
        return {
            "key": self.key,
            "rating": self.rating,
            "hidden": self.hidden,
            "tags": [{"id": i, "name": n} for i, n in self.tags],
            "metadata": self.metadata,
            "has_thumbnail": self.has_thumbnail,
        }


@dataclass
class BrowsePage:
    total: int
    items: list[BrowseItem] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"total": self.total, "items": [it.to_json() for it in self.items]}


@dataclass
class LabelWrite:
    """What a label call changed: keys updated, keys absent."""

    updated: list[str]
    missing: list[str]
