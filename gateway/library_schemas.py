"""Response models of the library APIs: browse, ratings, tags, vectors brought in (they
appear in the OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TagRef(BaseModel):
    id: int
    name: str


class BrowseItem(BaseModel):
    id: str = Field(description="the item's key: what /rating/{image_id} and /thumbnail/{image_id} take")
    key: str
    rating: int = Field(description="0 (not rated) to 5")
    tags: list[TagRef]
    hidden: bool
    metadata: dict[str, Any] | None = None
    thumbnail: str | None = Field(description="the path of its thumbnail (GET), null when it has none")


class BrowseResponse(BaseModel):
    index: str
    page: int
    per_page: int
    total: int = Field(description="items that pass the filters, on every page together")
    items: list[BrowseItem] = Field(description="in key order (by code point)")


class SetRatingResponse(BaseModel):
    index: str
    rating: int
    updated: int = Field(description="items rated")
    missing: list[str] = Field(description="keys the index does not have")


class RatingResponse(BaseModel):
    """The answer of POST /rating/{image_id} (one item's rating)."""

    id: str
    rating: int


class TagCount(BaseModel):
    id: int
    name: str
    count: int = Field(description="items that carry it")


class TagsResponse(BaseModel):
    index: str
    tags: list[TagCount] = Field(description="by id")


class TagItemsResponse(BaseModel):
    index: str
    updated: int = Field(description="items changed")
    missing: list[str] = Field(description="keys the index does not have")


class IndexVectorsResponse(BaseModel):
    index: str
    model: str = Field(description="the model whose space the vectors are taken to be in (the index's binding)")
    indexed: int
    total: int = Field(description="items in the index after this call")
