"""Response models of the gateway APIs (they appear in the OpenAPI schema at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


def null_first(schema: dict[str, Any]) -> None:
    """Put `null` first in a nullable field's `anyOf`.

    BentoML's client reads the server's schema with every `anyOf` flattened to its first
    member, then decodes an `array` field by iterating it: a nullable list declared as
    `list[float] | None` (array first) made `client.encode_images` raise TypeError on a
    failed item's null. With null first, the client passes the value through as it is.
    """
    schema["anyOf"].sort(key=lambda member: member.get("type") != "null")


class ItemError(BaseModel):
    error: str = Field(description="machine-readable code, e.g. corrupt_image, url_not_allowed")
    detail: str = Field(description="what was wrong, for humans")


class EncodedItem(BaseModel):
    index: int = Field(description="position in the request: uploads first, then urls, then images_base64")
    source: str = Field(description='"upload:<filename>", "url:<url>" or "base64[<i>]"')
    embedding: list[float] | None = Field(
        default=None, description="L2-normalized vector; null on error", json_schema_extra=null_first
    )
    error: ItemError | None = Field(default=None, description="why this item failed; null on success")


class EncodeImagesResponse(BaseModel):
    model: str
    dim: int
    results: list[EncodedItem]


class EmbedImageResponse(BaseModel):
    """The response of POST /embed-image: a CLIP vector with the model's name and device."""

    embedding: list[float]
    model: str
    device: str
