"""Thumbnails: a small WebP of each image, made at index time from the image already decoded
for CLIP, stored with the item (search/), served by GET /thumbnail/{index}/{key}.

    IMAGE_EMBED_THUMBNAILS       1 (default) or 0: store none
    IMAGE_EMBED_THUMBNAIL_SIZE   the longest side, 32 to 512 pixels (default 256)

The route answers image/webp, or a 404 `{error, detail}` when the index, the item or its
thumbnail is absent. It reads only what the index stores: no route serves files from disk.
Seed 003's GET /thumbnail/{id} is the same for the default index (a key without "/").
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import bentoml
from fastapi import APIRouter, Depends
from PIL import Image
from starlette.responses import Response

from config.settings import Settings, load_settings
from intake.errors import ClientError

from .errors import api_errors

WEBP_QUALITIES = (80, 60, 40)  # lower only when a busy image would exceed the size bound
CACHE_CONTROL = "private, max-age=60"  # an item replaced under the same key gets a new one soon


@dataclass(frozen=True)
class ThumbnailSettings:
    enabled: bool = True
    size: int = 256

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "ThumbnailSettings":
        s = settings or load_settings()
        return cls(enabled=s.thumbnails, size=s.thumbnail_size)


def make_thumbnail(image: Image.Image, size: int) -> bytes | None:
    """`image` shrunk to fit `size` x `size` (never enlarged) as WebP within the store's
    bound, or None if even the lowest quality does not fit (the item is indexed without one)."""
    from search.items import MAX_THUMBNAIL_BYTES

    scale = min(1.0, size / max(image.size))
    shape = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image.resize(shape, Image.Resampling.BICUBIC, reducing_gap=3.0) if scale < 1 else image
    for quality in WEBP_QUALITIES:
        buf = io.BytesIO()
        small.convert("RGB").save(buf, format="WEBP", quality=quality, method=4)
        if buf.tell() <= MAX_THUMBNAIL_BYTES:
            return buf.getvalue()
    return None


def encode_for_runner(thumbnails: list[bytes | None]) -> list[str | None]:
    return [None if t is None else base64.b64encode(t).decode("ascii") for t in thumbnails]


class NoThumbnail(ClientError):
    status = 404
    code = "thumbnail_not_found"


async def thumbnail_response(runners, index: str, key: str) -> Response:
    answer = await runners.index.thumbnail(index=index, key=key)
    if answer.get("webp") is None:
        raise NoThumbnail(f"item {key!r} of index {index!r} has no thumbnail (indexed with IMAGE_EMBED_THUMBNAILS=0, or before)")
    headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    return Response(base64.b64decode(answer["webp"]), media_type="image/webp", headers=headers)


thumbnail_routes = APIRouter()


@thumbnail_routes.get("/thumbnail/{index}/{key:path}", summary="An item's thumbnail (image/webp), 404 when it has none")
async def thumbnail(index: str, key: str, svc=Depends(bentoml.get_current_service)) -> Response:
    return await api_errors(thumbnail_response)(svc.runners, index, key)


@thumbnail_routes.get("/thumbnail/{key}", summary="Seed 003: the thumbnail of an item of the default index")
async def thumbnail_default_index(key: str, svc=Depends(bentoml.get_current_service)) -> Response:
    return await api_errors(thumbnail_response)(svc.runners, "default", key)
