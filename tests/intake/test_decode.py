"""Safe decoding: allowed formats by content, caps before decoding, clear refusals."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from config.sections import IntakeSettings
from intake.decode import ALLOWED_FORMATS, decode_image, describe_refused, sniff_format
from intake.errors import CorruptImage, EmptyImage, ImageTooLarge, ImageTooSmall, UnsupportedImageFormat
from tests.conftest import encode, noise_image, photo

SETTINGS = IntakeSettings()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a tiny (invalid) body."""
    real = encode(noise_image(16, 16), "PNG")
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return real[:8] + patched + real[8 + len(patched) :]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_allowed_formats_decode_to_rgb(fmt):
    decoded = decode_image(encode(noise_image(64, 48), fmt), SETTINGS)
    assert decoded.format == fmt
    assert decoded.image.mode == "RGB"
    assert decoded.size == (64, 48)


def test_allowed_formats_are_what_the_issue_lists():
    assert set(ALLOWED_FORMATS) == {"JPEG", "PNG", "WEBP", "GIF", "BMP"}


def test_format_comes_from_content_not_from_a_name():
    png = encode(noise_image(32, 32), "PNG")
    assert sniff_format(png) == "PNG"
    assert decode_image(png, SETTINGS).format == "PNG"


def test_gif_first_frame_is_used():
    red = Image.new("RGB", (32, 32), (255, 0, 0))
    blue = Image.new("RGB", (32, 32), (0, 0, 255))
    buf = io.BytesIO()
    red.save(buf, format="GIF", save_all=True, append_images=[blue], duration=100, loop=0)
    pixel = decode_image(buf.getvalue(), SETTINGS).image.getpixel((16, 16))
    assert pixel[0] > 200 and pixel[2] < 50


def test_exif_orientation_is_applied():
    img = noise_image(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = decode_image(encode(img, "JPEG", exif=exif), SETTINGS)
    assert decoded.size == (40, 80)


@pytest.mark.parametrize(
    "mode",
    ["RGBA", "LA", "L", "P", "CMYK", "I;16"],
)
def test_other_modes_become_rgb(mode):
    img = noise_image(40, 40).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img).astype(np.uint16) * 257)
        assert img.mode == "I;16"
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    decoded = decode_image(encode(img, fmt), SETTINGS)
    assert decoded.image.mode == "RGB"
    assert decoded.size == (40, 40)


def test_sixteen_bit_gray_keeps_its_brightness():
    gray = np.full((32, 32), 40000, dtype=np.uint16)  # 61% of full scale
    decoded = decode_image(encode(Image.fromarray(gray), "PNG"), SETTINGS)
    assert abs(decoded.image.getpixel((5, 5))[0] - 40000 // 256) <= 1


def test_palette_with_transparency_converts_without_error():
    img = noise_image(32, 32).convert("P")
    img.info["transparency"] = 0
    assert decode_image(encode(img, "PNG", transparency=0), SETTINGS).image.mode == "RGB"


def test_empty_is_refused():
    with pytest.raises(EmptyImage) as err:
        decode_image(b"", SETTINGS)
    assert err.value.status == 400 and "empty" in err.value.detail


def test_random_bytes_are_an_unsupported_format():
    with pytest.raises(UnsupportedImageFormat) as err:
        decode_image(np.random.default_rng(1).bytes(4096), SETTINGS)
    assert err.value.status == 415
    assert "not an allowed image format" in err.value.detail


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' width='10'/>", "SVG"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIC"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
    ],
)
def test_disguised_formats_are_named_in_the_refusal(data, name):
    with pytest.raises(UnsupportedImageFormat) as err:
        decode_image(data, SETTINGS)
    assert name in err.value.detail


def test_real_tiff_is_refused_by_name():
    tiff = encode(noise_image(32, 32), "TIFF")
    assert describe_refused(tiff) == "TIFF"
    with pytest.raises(UnsupportedImageFormat, match="TIFF"):
        decode_image(tiff, SETTINGS)


def test_truncated_jpeg_is_corrupt():
    data = encode(photo(), "JPEG")
    with pytest.raises(CorruptImage) as err:
        decode_image(data[: len(data) // 2], SETTINGS)
    assert err.value.status == 400 and "JPEG" in err.value.detail


def test_garbage_after_a_valid_signature_is_corrupt():
    with pytest.raises(CorruptImage):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, SETTINGS)


def test_decompression_bomb_is_refused_before_any_pixel_is_decoded(monkeypatch):
    def never(*_args, **_kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    with pytest.raises(ImageTooLarge) as err:
        decode_image(png_claiming(30000, 30000), SETTINGS)
    assert err.value.status == 413
    assert "30000x30000" in err.value.detail


def test_pixel_cap_boundary():
    settings = IntakeSettings(max_image_pixels=64 * 64)
    assert decode_image(encode(noise_image(64, 64), "PNG"), settings).size == (64, 64)
    with pytest.raises(ImageTooLarge):
        decode_image(encode(noise_image(65, 64), "PNG"), settings)


def test_one_pixel_image_is_too_small():
    with pytest.raises(ImageTooSmall) as err:
        decode_image(encode(noise_image(1, 1), "PNG"), SETTINGS)
    assert err.value.status == 400 and "1x1" in err.value.detail


def test_min_side_applies_to_each_side():
    settings = IntakeSettings(min_image_side=16)
    with pytest.raises(ImageTooSmall):
        decode_image(encode(noise_image(500, 15), "PNG"), settings)
    assert decode_image(encode(noise_image(16, 16), "PNG"), settings).size == (16, 16)


def test_byte_cap():
    data = encode(noise_image(64, 64), "PNG")
    with pytest.raises(ImageTooLarge) as err:
        decode_image(data, IntakeSettings(max_image_bytes=len(data) - 1))
    assert err.value.status == 413
    assert decode_image(data, IntakeSettings(max_image_bytes=len(data))).size == (64, 64)


def test_errors_render_as_json_bodies():
    with pytest.raises(UnsupportedImageFormat) as err:
        decode_image(b"%PDF-1.4", SETTINGS)
    body = err.value.to_json()
    assert body["error"] == "unsupported_image_format"
    assert "PDF" in body["detail"]


DRAFT = IntakeSettings(jpeg_draft=True)


def large_photo(width: int, height: int) -> Image.Image:
    return photo().resize((width, height), Image.Resampling.BICUBIC)


@pytest.mark.parametrize(
    ("size", "min_side", "expected"),
    [
        ((1920, 1080), 224, (480, 270)),  # 1/4: the short side stays >= 224
        ((4000, 3000), 224, (500, 375)),  # 1/8 at most
        ((1080, 1920), 224, (270, 480)),  # portrait
        ((600, 400), 224, (600, 400)),  # under twice the target: decoded whole
        ((1920, 1080), 448, (960, 540)),  # a larger input halves only
    ],
)
def test_jpeg_draft_scales_down_while_both_sides_stay_above_min_side(size, min_side, expected):
    decoded = decode_image(encode(large_photo(*size), "JPEG", quality=90), DRAFT, min_side)
    assert decoded.size == expected and decoded.image.mode == "RGB"


def test_jpeg_draft_is_off_by_default_and_needs_a_min_side():
    data = encode(large_photo(1920, 1080), "JPEG", quality=90)
    assert decode_image(data, SETTINGS, 224).size == (1920, 1080)
    assert decode_image(data, DRAFT).size == (1920, 1080)


def test_jpeg_draft_leaves_other_formats_whole():
    assert decode_image(encode(large_photo(1920, 1080), "PNG"), DRAFT, 224).size == (1920, 1080)


def test_jpeg_draft_checks_limits_on_the_stored_size():
    data = encode(large_photo(1920, 1080), "JPEG", quality=90)
    with pytest.raises(ImageTooLarge) as err:
        decode_image(data, IntakeSettings(jpeg_draft=True, max_image_pixels=1920 * 1080 - 1), 224)
    assert "1920x1080" in err.value.detail


def test_jpeg_draft_keeps_the_exif_orientation():
    img = large_photo(1920, 1080)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = decode_image(encode(img, "JPEG", quality=90, exif=exif.tobytes()), DRAFT, 224)
    assert decoded.size == (270, 480)
