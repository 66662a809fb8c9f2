"""The library's BentoML APIs: vectors brought in, browse, ratings, tags, hiding. A part of the
gateway service (service.py's ImageEmbed inherits it; BentoML finds inherited APIs), each API a
short delegation to gateway/library.py over the service's `routes`."""

from __future__ import annotations

from typing import Any

import bentoml
from pydantic import StrictBool, StrictFloat, StrictInt

from .errors import api_errors
from .library import label_filter
from .library_schemas import BrowseResponse, IndexVectorsResponse, SetRatingResponse, TagItemsResponse, TagsResponse
from .search import DEFAULT_INDEX


class LibraryAPIs:
    """Needs `self.routes` (gateway/routes.py), set by the service's __init__."""

    @bentoml.api
    @api_errors
    async def index_vectors(
        self,
        keys: list[str],
        vectors: list[list[StrictFloat]],
        metadata: list[dict[str, Any] | None] = [],
        ratings: list[StrictInt | None] = [],
        tags: list[list[str]] = [],
        hidden: list[StrictBool | None] = [],
        thumbnails: list[str | None] = [],
        phashes: list[str | None] = [],
        index: str = DEFAULT_INDEX,
        model: str | None = None,
    ) -> IndexVectorsResponse:
        """Store vectors computed elsewhere (up to 1000 a call) under `keys`, replacing items
        with the same key; durable when it returns. The vectors must be in the space of the
        index's model (CLIP's: 512 floats, finite); they are L2-normalized here. `model`: the
        model a new index is bound to (default clip); an existing index keeps its own. Optional, one
        per item (null: none, or that label unchanged): `metadata`, `ratings` (0-5), `tags`
        (a list of names per item, created when new: the item's tags become exactly these),
        `hidden`, `thumbnails` (base64 WebP, at most 128 KiB), `phashes` (the 64-bit
        perceptual hash as 16 hex digits)."""
        return await self.routes.library.index_vectors(
            keys, vectors, index, metadata, (), thumbnails, phashes, ratings, hidden, tags, model
        )

    @bentoml.api
    @api_errors
    async def browse(
        self,
        page: StrictInt = 1,
        per_page: StrictInt = 24,
        min_rating: StrictInt = 0,
        tag_ids: list[StrictInt] = [],
        include_hidden: StrictBool = False,
        index: str = DEFAULT_INDEX,
    ) -> BrowseResponse:
        """One page of an index in key order (by code point), with each item's rating, tags,
        hidden flag, metadata and thumbnail path; `per_page` up to 200. `tag_ids`: items
        carrying all of them; hidden items only with `include_hidden`."""
        labels = label_filter(min_rating, tag_ids, include_hidden)
        return await self.routes.library.browse(index, page, per_page, labels)

    @bentoml.api
    @api_errors
    async def set_rating(self, keys: list[str], rating: StrictInt, index: str = DEFAULT_INDEX) -> SetRatingResponse:
        """Rate items 0 (not rated) to 5; durable when it returns; unknown keys in `missing`."""
        return await self.routes.library.set_rating(keys, rating, index)

    @bentoml.api
    @api_errors
    async def tags(self, index: str = DEFAULT_INDEX) -> TagsResponse:
        """The index's tags: id, name and how many items carry each."""
        return await self.routes.library.tags(index)

    @bentoml.api
    @api_errors
    async def tag_items(
        self,
        keys: list[str],
        add: list[str] = [],
        remove: list[str] = [],
        hidden: StrictBool | None = None,
        index: str = DEFAULT_INDEX,
    ) -> TagItemsResponse:
        """For every key at once: add tags by name (a new name is created), remove tags by name,
        hide (`hidden` true) or unhide (false); one transaction, durable when it returns;
        unknown keys in `missing`."""
        return await self.routes.library.tag_items(keys, add, remove, hidden, index)
