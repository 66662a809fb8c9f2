"""The one way every API gets images: upload, base64 or URL in, a decoded RGB image out.

Each image is read and decoded exactly once per request, off the event loop; decoding and
resizing for a model happen in one worker-thread hop.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np

from config.sections import IntakeSettings
from config.settings import load_settings
from intake.decode import DecodedImage, decode_image
from intake.errors import ClientError, ImageTooLarge, InvalidBase64
from intake.fetch import fetch_image_bytes, make_client
from models.preprocess import decoded_side, prepare_images
from models.specs import ModelSpec


@dataclass(frozen=True)
class ImageRef:
    """One image as the caller sent it; exactly one of the three is set."""

    upload: Path | None = None
    url: str | None = None
    base64: str | None = None
    label: str = ""  # how results name it: "upload:cat.jpg", "url:https://...", "base64[0]"


def upload_name(path: Path) -> str:
    """The client's file name of an upload.

    BentoML stores each upload as NamedTemporaryFile(suffix=<client file name>), whose name
    is "tmp" + 8 random characters + suffix; this strips that prefix again.
    """
    name = path.name
    return name[11:] if name.startswith("tmp") and len(name) > 11 else name


def single_ref(upload: Path | None, url: str | None, image_base64: str | None) -> ImageRef:
    """The one image of a single-image API call, or a 400 saying what to send."""
    given = [name for name, v in (("image", upload), ("url", url), ("image_base64", image_base64)) if v]
    if len(given) != 1:
        what = "none" if not given else " and ".join(f"`{g}`" for g in given)
        raise ClientError(
            f"send exactly one image: an upload in `image`, an http(s) URL in `url`, "
            f"or base64 in `image_base64` (got {what})",
            code="missing_image" if not given else "ambiguous_image",
        )
    return ImageRef(upload=upload or None, url=url or None, base64=image_base64 or None, label=_label(upload, url))


def _label(upload: Path | None, url: str | None) -> str:
    if upload:
        return f"upload:{upload_name(upload)}"
    return f"url:{url}" if url else "base64[0]"


def many_refs(uploads: Sequence[Path], urls: Sequence[str], b64s: Sequence[str], limit: int) -> list[ImageRef]:
    refs = [ImageRef(upload=p, label=f"upload:{upload_name(p)}") for p in uploads]
    refs += [ImageRef(url=u, label=f"url:{u}") for u in urls]
    refs += [ImageRef(base64=b, label=f"base64[{i}]") for i, b in enumerate(b64s)]
    if not refs:
        raise ClientError("send at least one image in `images` (uploads), `urls` or `images_base64`", code="missing_image")
    if len(refs) > limit:
        raise ClientError(
            f"{len(refs)} images in one call; the limit is {limit} (IMAGE_EMBED_MAX_ITEMS)", code="too_many_items"
        )
    return refs


def decode_base64(text: str, max_bytes: int) -> bytes:
    payload = text.strip()
    if payload.startswith("data:"):
        header, _, payload = payload.partition(",")
        if ";base64" not in header:
            raise InvalidBase64("a data: URL must be base64-encoded (data:image/...;base64,...)")
    payload = "".join(payload.split())
    padding = 2 if payload.endswith("==") else 1 if payload.endswith("=") else 0
    if len(payload) * 3 // 4 - padding > max_bytes:  # the decoded size, exact for valid base64
        raise ImageTooLarge(f"the base64 image decodes to more than {max_bytes:,} bytes")
    try:
        altchars = b"-_" if ("-" in payload or "_" in payload) else None
        return base64.b64decode(payload, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBase64(f"`image_base64` is not valid base64: {exc}") from None


class ImageLoader:
    def __init__(self, settings: IntakeSettings | None = None) -> None:
        self.settings = settings or load_settings()
        self._client = None

    @property
    def client(self):
        if self._client is None:  # created lazily, inside the serving event loop
            self._client = make_client(self.settings)
        return self._client

    async def read_bytes(self, ref: ImageRef) -> bytes:
        limit = self.settings.max_image_bytes
        if ref.upload is not None:
            size = ref.upload.stat().st_size
            if size > limit:
                raise ImageTooLarge(f"the upload is {size:,} bytes; the limit is {limit:,} bytes")
            return await anyio.Path(ref.upload).read_bytes()
        if ref.url is not None:
            return await fetch_image_bytes(ref.url, self.settings, self.client)
        return decode_base64(ref.base64 or "", limit)

    async def load(self, ref: ImageRef) -> DecodedImage:
        data = await self.read_bytes(ref)
        return await anyio.to_thread.run_sync(decode_image, data, self.settings)

    async def load_for_model(self, ref: ImageRef, spec: ModelSpec) -> np.ndarray:
        """Read, decode and resize one image for `spec`: uint8 (size, size, 3)."""
        data = await self.read_bytes(ref)

        def work() -> np.ndarray:
            return prepare_images([decode_image(data, self.settings, decoded_side(spec)).image], spec)[0]

        return await anyio.to_thread.run_sync(work)

    async def load_for_index(
        self, ref: ImageRef, spec: ModelSpec, thumbnail_px: int | None
    ) -> tuple[np.ndarray, bytes | None, int]:
        """As load_for_model, plus what the index stores beside the vector, from the same
        decoded image (one decode): a WebP thumbnail (None when `thumbnail_px` is None) and
        the 64-bit perceptual hash."""
        from search.perceptual_hash import phash_of

        from .thumbnails import make_thumbnail

        data = await self.read_bytes(ref)

        def work() -> tuple[np.ndarray, bytes | None, int]:
            image = decode_image(data, self.settings, max(decoded_side(spec), thumbnail_px or 0)).image
            thumbnail = make_thumbnail(image, thumbnail_px) if thumbnail_px else None
            return prepare_images([image], spec)[0], thumbnail, phash_of(image)

        return await anyio.to_thread.run_sync(work)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
