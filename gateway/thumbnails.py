"""Thumbnails: a small WebP of each image, made at index time from the image already decoded
for CLIP, stored with the item (search/), served by GET /thumbnail/{index}/{key}.

    IMAGE_EMBED_THUMBNAILS       1 (default) or 0: store none
    IMAGE_EMBED_THUMBNAIL_SIZE   the longest side, 32 to 512 pixels (default 256)

The route answers image/webp, or a 404 `{error, detail}` when the index, the item or its
thumbnail is absent. It reads only what the index stores: no route serves files from disk.
GET /thumbnail/{id}, the old search service's route, is the same for the default index (a key
without "/").
"""

from __future__ import annotations

import base64
import io

from fastapi import APIRouter
from PIL import Image
from starlette.responses import Response

from intake.errors import ClientError

from .bound import bound
from .errors import api_errors
from .runner_client import RunnerClient

WEBP_QUALITIES = (80, 60, 40)  # lower only when a busy image would exceed the size bound
# Measured here (1280 x 720 photo to 256 px): BICUBIC with reducing_gap 2 takes 3.3 ms (3.0:
# 6.7 ms), WebP method 2 takes 2.4 ms (method 4: 4.7 ms, 6: 12.7 ms) for ~8 KiB either way.
REDUCING_GAP = 2.0
WEBP_METHOD = 2
CACHE_CONTROL = "private, max-age=60"  # an item replaced under the same key gets a new one soon


def make_thumbnail(image: Image.Image, size: int) -> bytes | None:
    """`image` shrunk to fit `size` x `size` (never enlarged) as WebP within the store's
    bound: at a lower quality, then at half the size, when a busy image needs it; None if
    nothing fits (the item is indexed without one)."""
    from search.items import MAX_THUMBNAIL_BYTES

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    for side in (size, size // 2, size // 4):
        small = _fit(rgb, max(side, 1))
        for quality in WEBP_QUALITIES:
            buf = io.BytesIO()
            small.save(buf, format="WEBP", quality=quality, method=WEBP_METHOD)
            if buf.tell() <= MAX_THUMBNAIL_BYTES:
                return buf.getvalue()
    return None


def _fit(image: Image.Image, side: int) -> Image.Image:
    scale = min(1.0, side / max(image.size))
    if scale >= 1:
        return image
    shape = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(shape, Image.Resampling.BICUBIC, reducing_gap=REDUCING_GAP)


def encode_for_runner(thumbnails: list[bytes | None]) -> list[str | None]:
    return [None if t is None else base64.b64encode(t).decode("ascii") for t in thumbnails]


class NoThumbnail(ClientError):
    status = 404
    code = "thumbnail_not_found"


async def thumbnail_response(runners: RunnerClient, index: str, key: str) -> Response:
    answer = await runners.index.thumbnail(index=index, key=key)
    if answer.get("webp") is None:
        raise NoThumbnail(f"item {key!r} of index {index!r} has no thumbnail (indexed with IMAGE_EMBED_THUMBNAILS=0, or before)")
    headers = {"Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    return Response(base64.b64decode(answer["webp"]), media_type="image/webp", headers=headers)


thumbnail_routes = APIRouter()


@thumbnail_routes.get("/thumbnail/{index}/{key:path}", summary="An item's thumbnail (image/webp), 404 when it has none")
async def thumbnail(index: str, key: str, runners: RunnerClient = bound(RunnerClient)) -> Response:
    return await api_errors(thumbnail_response)(runners, index, key)


@thumbnail_routes.get("/thumbnail/{key}", summary="The thumbnail of an item of the default index (as the search service's)")
async def thumbnail_default_index(key: str, runners: RunnerClient = bound(RunnerClient)) -> Response:
    return await api_errors(thumbnail_response)(runners, "default", key)
