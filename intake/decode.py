"""Safe image decoding: bytes in, an RGB PIL image out, or a ClientError saying why not.

Rules, in the order they are checked:
1. non-empty and at most `max_image_bytes`;
2. the format is sniffed from the content (never from a client's Content-Type or file
   name) and must be one of JPEG, PNG, WebP, GIF (first frame) or BMP;
3. the header's width x height must be at most `max_pixels` (checked before any pixel is
   decoded, so decompression bombs cost nothing) and each side at least `min_side`;
4. the pixels must decode completely (truncated or corrupt files are refused);
5. EXIF orientation is applied and the image is converted to RGB.

With IMAGE_EMBED_JPEG_DRAFT on and a caller that says how small the image may come out
(`min_side`: the model's resize target), a JPEG at least twice that size is decoded at 1/2,
1/4 or 1/8 scale by libjpeg's DCT scaling (PIL's `draft`), both sides staying >= min_side.
The limits above are checked on the stored size, before that.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from config.sections import IntakeSettings

from .errors import CorruptImage, EmptyImage, ImageTooLarge, ImageTooSmall, UnsupportedImageFormat

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

# PIL's own decompression-bomb check is global and fixed (it raises in Image.open with its
# own limit in the message). `decode_image` enforces the configured `max_pixels` from the
# header before any pixel is decoded, so PIL's check is switched off in favour of it.
Image.MAX_IMAGE_PIXELS = None

# Formats we recognise only to name them in the refusal.
_REFUSED_SIGNATURES = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript"),
    (b"8BPS", "Photoshop PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"PK\x03\x04", "ZIP archive"),
)


def sniff_format(data: bytes) -> str | None:
    """The allowed format `data` starts with, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM"):
        return "BMP"
    return None


def describe_refused(data: bytes) -> str:
    """A human name for content that is not an allowed image."""
    for signature, name in _REFUSED_SIGNATURES:
        if data.startswith(signature):
            return name
    if data[4:8] == b"ftyp":
        brand = data[8:12].decode("latin-1").strip().lower()
        return {"heic": "HEIC", "heix": "HEIC", "mif1": "HEIF", "avif": "AVIF"}.get(brand, f"ISO media ({brand})")
    head = data[:512].lstrip().lower()
    if head.startswith(b"<?xml") or b"<svg" in head:
        return "SVG/XML"
    if head.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    return "unrecognised data"


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, EXIF orientation applied
    format: str  # the sniffed format
    num_bytes: int

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def decode_image(data: bytes, settings: IntakeSettings, min_side: int | None = None) -> DecodedImage:
    if not data:
        raise EmptyImage("the image is empty (0 bytes)")
    if len(data) > settings.max_image_bytes:
        raise ImageTooLarge(f"the image is {len(data):,} bytes; the limit is {settings.max_image_bytes:,} bytes")

    fmt = sniff_format(data)
    if fmt is None:
        raise UnsupportedImageFormat(
            f"the content is {describe_refused(data)}, not an allowed image format "
            f"({', '.join(ALLOWED_FORMATS)}); the format is read from the bytes, not the file name or Content-Type"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. palette/transparency notes: not the caller's concern
        try:
            img = Image.open(io.BytesIO(data), formats=[fmt])
        except Exception as exc:
            raise CorruptImage(f"could not read the {fmt} header: {exc}") from None

        width, height = img.size
        if width * height > settings.max_image_pixels:
            raise ImageTooLarge(
                f"the {fmt} image is {width}x{height} = {width * height:,} pixels; "
                f"the limit is {settings.max_image_pixels:,} pixels"
            )
        if min(width, height) < settings.min_image_side:
            raise ImageTooSmall(
                f"the {fmt} image is {width}x{height}; each side must be at least {settings.min_image_side} pixels"
            )
        if fmt == "JPEG" and settings.jpeg_draft and min_side:
            img.draft(None, (min_side, min_side))  # both sides >= min_side; a no-op below 2x
        try:
            img.seek(0)  # first frame of an animation
            img.load()
        except Exception as exc:
            raise CorruptImage(f"could not decode the {fmt} image ({width}x{height}): {exc}") from None
        return DecodedImage(image=_to_rgb(_apply_orientation(img)), format=fmt, num_bytes=len(data))


def _apply_orientation(img: Image.Image) -> Image.Image:
    try:
        ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to rotate
    except Exception:
        pass  # malformed EXIF: keep the pixels as stored rather than refuse the image
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        img = img.point(lambda v: v * (1 / 256)).convert("L")  # 16-bit -> 8-bit
    elif img.mode == "F":
        img = img.convert("L")
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")
