"""What an index is bound to. Vectors of one model are meaningless next to another's, so an
index records the model, dimension, metric and normalization that filled it (in its
database: the SQLite file's `binding` row, PostgreSQL's `image_embed_indexes` table), and
every write or search states its own; any difference is refused, naming both."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidItem, ManifestMismatch

METRICS = ("ip",)  # inner product; on L2-normalized vectors it is the cosine similarity
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, kw_only=True)
class Binding:
    model: str  # the embedding model's identity, e.g. the CLIP spec's store_tag
    dim: int
    metric: str = "ip"
    normalized: bool = True  # vectors are L2-normalized on the way in (and queries too)

    def __post_init__(self) -> None:
        if not self.model:
            raise InvalidItem("a binding needs the model's name")
        if not isinstance(self.dim, int) or self.dim < 1:
            raise InvalidItem(f"dimension must be a positive integer, not {self.dim!r}")
        if self.metric not in METRICS:
            raise InvalidItem(f"metric {self.metric!r} is not supported; use one of {METRICS}")

    def describe(self) -> str:
        norm = "L2-normalized" if self.normalized else "raw"
        return f"model {self.model} ({self.dim}-d, {self.metric}, {norm})"

    @classmethod
    def from_json(cls, data: dict) -> "Binding":
        return cls(model=data["model"], dim=int(data["dim"]), metric=data["metric"], normalized=bool(data["normalized"]))


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or name in (".", ".."):
        raise InvalidItem(
            f"index name {name!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


def check_binding(name: str, stored: Binding, wanted: Binding) -> None:
    if stored != wanted:
        raise ManifestMismatch(
            f"index {name!r} holds vectors of {stored.describe()}; this request uses {wanted.describe()}. "
            "Use another index name, or delete this index to rebuild it with the new model."
        )
