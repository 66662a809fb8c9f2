"""The library: browse an index page by page, rate, tag and hide items, and bring in vectors
computed elsewhere (index_vectors). Everything is stored by the index runner, with the items
(search/labels.py); this module checks the input and shapes the answers.

`id` in browse items is the item's key: the gallery routes address images by it
(/rating/{image_id}, /thumbnail/{image_id}).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import numpy as np

from intake.errors import ClientError
from models.registry import find_by_store_tag, get_spec

from .library_schemas import (
    BrowseItem,
    BrowseResponse,
    IndexVectorsResponse,
    RatingResponse,
    SetRatingResponse,
    TagCount,
    TagItemsResponse,
    TagRef,
    TagsResponse,
)
from .index_admin import check_keys as _check_keys
from .runner_client import RunnerClient
from .encode import DEFAULT_MODEL
from .search import binding_of

MAX_VECTORS = 1_000


def _client_error(exc) -> ClientError:
    return ClientError(exc.detail, status=exc.status, code=exc.code)


def label_filter(min_rating: int = 0, tag_ids=(), include_hidden: bool = False) -> dict[str, Any]:
    """The label filter of a browse or search call, checked here (a 400 names the problem)."""
    from search.errors import SearchError
    from search.labels import LabelFilter

    try:
        return LabelFilter.of(min_rating, tuple(tag_ids or ()), include_hidden).to_json()
    except SearchError as exc:
        raise _client_error(exc) from None


def parse_tag_ids(text: str | None) -> list[int]:
    """The `tag_ids=1,2` query parameter of GET /browse."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ClientError(f"tag_ids is a comma-separated list of tag ids, not {text!r:.60}", code="invalid_request") from None


def thumbnail_path(index: str, key: str) -> str:
    return f"/thumbnail/{quote(index, safe='')}/{quote(key, safe='')}"


def _per_item(name: str, values: list, n: int) -> list | None:
    if not values:
        return None
    if len(values) != n:
        raise ClientError(f"{len(values)} {name} for {n} keys: send one per key, or none", code="invalid_item")
    return list(values)


class LibraryRoutes:
    def __init__(self, runners: RunnerClient) -> None:
        self.runners = runners

    async def target(self, index: str, model: str | None) -> tuple[dict[str, Any], str]:
        """(binding, model name) of the vectors sent to `index`: `model`'s when named (a served
        embedding model; an existing index of another model then answers 409), else the
        index's own, else clip's for a new index. The model need not be served otherwise:
        the vectors were computed elsewhere."""
        if model:
            spec = self.runners.embedding_spec(model, what="indexing vectors")
            return binding_of(spec), spec.display_name
        try:
            bound = await self.runners.index.binding(index=index)
        except ClientError as exc:
            if exc.code != "index_not_found":
                raise
            spec = get_spec(DEFAULT_MODEL)
            return binding_of(spec), spec.display_name
        spec = find_by_store_tag(bound["model"])
        return bound, spec.display_name if spec is not None else bound["model"]

    async def browse(self, index: str, page: int, per_page: int, labels: dict[str, Any]) -> BrowseResponse:
        answer = await self.runners.index.browse(index=index, page=page, per_page=per_page, labels=labels)
        items = [
            BrowseItem(
                id=it["key"],
                key=it["key"],
                rating=it["rating"],
                tags=[TagRef(**t) for t in it["tags"]],
                hidden=it["hidden"],
                metadata=it["metadata"],
                thumbnail=thumbnail_path(index, it["key"]) if it["has_thumbnail"] else None,
            )
            for it in answer["items"]
        ]
        return BrowseResponse(index=index, page=page, per_page=per_page, total=answer["total"], items=items)

    async def set_rating(self, keys: list[str], rating: int, index: str) -> SetRatingResponse:
        answer = await self.runners.index.set_rating(index=index, keys=_check_keys(keys), rating=rating)
        return SetRatingResponse(index=index, rating=rating, updated=len(answer["updated"]), missing=answer["missing"])

    async def rate_one(self, key: str, rating: int, index: str) -> RatingResponse:
        """POST /rating/{image_id}: rate one item; 404 when the key is unknown."""
        answer = await self.set_rating([key], rating, index)
        if answer.missing:
            raise ClientError(f"index {index!r} has no item {key!r}", status=404, code="key_not_found")
        return RatingResponse(id=key, rating=rating)

    async def tags(self, index: str) -> TagsResponse:
        answer = await self.runners.index.tags(index=index)
        return TagsResponse(index=index, tags=[TagCount(**t) for t in answer["tags"]])

    async def tag_items(self, keys: list[str], add: list[str], remove: list[str], hidden: bool | None, index: str) -> TagItemsResponse:
        if not add and not remove and hidden is None:
            raise ClientError("send tag names to `add` or `remove`, or `hidden`", code="invalid_request")
        answer = await self.runners.index.tag_items(index=index, keys=_check_keys(keys), add=add, remove=remove, hidden=hidden)
        return TagItemsResponse(index=index, updated=len(answer["updated"]), missing=answer["missing"])

    async def index_vectors(
        self,
        keys: list[str],
        vectors: list[list[float]],
        index: str,
        metadata: list = (),
        sources: list = (),
        thumbnails: list = (),
        phashes: list = (),
        ratings: list = (),
        hidden: list = (),
        tags: list = (),
        model: str | None = None,
    ) -> IndexVectorsResponse:
        """Vectors computed elsewhere, stored under `keys` (durable when it returns). They must
        be in the index's model space: its dimension, finite; they are L2-normalized here."""
        n = len(_check_keys(keys))
        if n > MAX_VECTORS:
            raise ClientError(f"{n} vectors in one call; the limit is {MAX_VECTORS}", code="too_many_items")
        if len(vectors) != n:
            raise ClientError(f"{len(vectors)} vectors for {n} keys: send one vector per key", code="invalid_item")
        binding, model_name = await self.target(index, model)
        if any(len(v) != binding["dim"] for v in vectors):
            bad = next(i for i, v in enumerate(vectors) if len(v) != binding["dim"])
            raise ClientError(
                f"vector {bad} has {len(vectors[bad])} dimensions; this index holds {binding['dim']}-d vectors of {model_name}",
                code="invalid_item",
            )
        answer = await self.runners.index.upsert(
            index=index,
            binding=binding,
            keys=list(keys),
            vectors=np.asarray(vectors, dtype=np.float32),
            metadata=_per_item("metadata objects", metadata, n) or [None] * n,
            sources=_per_item("sources", sources, n) or [None] * n,
            thumbnails=_per_item("thumbnails", thumbnails, n),
            phashes=_per_item("phashes", phashes, n),
            ratings=_per_item("ratings", ratings, n),
            hidden=_per_item("hidden flags", hidden, n),
            tags=_per_item("tag lists", tags, n),
        )
        return IndexVectorsResponse(index=index, model=model_name, indexed=n, total=answer["total"])
