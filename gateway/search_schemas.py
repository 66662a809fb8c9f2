"""Response models of the search APIs (they appear in the OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .schemas import ItemError


class SearchHit(BaseModel):
    key: str = Field(description="the item's key (a path, a product id...)")
    score: float = Field(description="cosine similarity to the query, from the stored vector")
    metadata: dict[str, Any] | None = None


class SearchResponse(BaseModel):
    index: str
    results: list[SearchHit] = Field(description="best first")


class IndexedItem(BaseModel):
    position: int = Field(description="place in the request: uploads first, then urls, then images_base64")
    key: str | None
    source: str = Field(description='"upload:<filename>", "url:<url>" or "base64[<i>]"')
    indexed: bool
    error: ItemError | None = None


class IndexImagesResponse(BaseModel):
    index: str
    model: str
    indexed: int
    failed: int
    total: int = Field(description="items in the index after this call")
    results: list[IndexedItem]


class DeleteResponse(BaseModel):
    index: str
    deleted: list[str]
    missing: list[str]


class DropIndexResponse(BaseModel):
    index: str
    dropped: bool = Field(description="the index and all its data are gone")


class StoredItem(BaseModel):
    key: str
    metadata: dict[str, Any] | None = None
    source: str | None = Field(default=None, description="the URL it was indexed from, if any")
    rating: int = Field(default=0, description="0 (not rated) to 5")
    hidden: bool = False
    tags: list[str] = Field(default_factory=list, description="the names of its tags")
    # Empty unless asked for (not null: BentoML's Python client cannot decode a null list).
    vector: list[float] = Field(default_factory=list, description="the stored vector, when with_vectors is set")


class GetResponse(BaseModel):
    index: str
    items: list[StoredItem]
    missing: list[str]


class DuplicatePair(BaseModel):
    a: str
    b: str
    score: float | None = Field(default=None, description="clip: cosine similarity")
    distance: int | None = Field(default=None, description="phash: Hamming distance in bits")


class DuplicateMember(BaseModel):
    key: str
    phash: str | None = Field(default=None, description="phash: the 64-bit hash, 16 hex digits")
    distance: int | None = Field(default=None, description="phash: bits from the group's first item")


class DuplicateGroup(BaseModel):
    size: int
    items: list[DuplicateMember] = Field(description="by key")


class DuplicatesResponse(BaseModel):
    index: str
    method: str = Field(description='"clip" (cosine of the CLIP vectors) or "phash" (perceptual hash)')
    threshold: float | None = Field(description="clip: the least cosine similarity of a pair")
    max_distance: int | None = Field(description="phash: the largest Hamming distance of a pair")
    pairs: list[DuplicatePair] = Field(
        description="clip: most similar first; phash: each group's first item with each of the others"
    )
    groups: list[DuplicateGroup] = Field(description="near-identical items joined through their pairs, largest first")


class IndexStats(BaseModel):
    index: str
    count: int
    dimension: int
    model: str
    metric: str
    index_type: str = Field(description='"exact" (flat scan) or "approximate" (FAISS candidates, exact re-rank)')
    bytes_on_disk: int
    last_snapshot: dict[str, Any]
    details: dict[str, Any]


class VerifiedItem(BaseModel):
    key: str
    cosine: float | None = None
    error: ItemError | None = None


class VerifyResponse(BaseModel):
    index: str
    ok: bool = Field(description="structure sound and every re-embedded item matched")
    count: int
    problems: list[str] = Field(description="structural alignment problems (none when sound)")
    threshold: float
    checked: int = Field(description="items re-embedded and compared")
    min_cosine: float | None
    mismatches: list[VerifiedItem]
    unreachable: list[VerifiedItem] = Field(description="sampled items whose image could not be read again")
