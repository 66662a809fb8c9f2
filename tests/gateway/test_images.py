"""The gateway's image intake glue: base64, which-image-was-sent rules, uploads, the loader."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path

import numpy as np
import pytest

from config.sections import IntakeSettings
from gateway.images import ImageLoader, ImageRef, decode_base64, many_refs, single_ref, upload_name
from intake.decode import decode_image
from intake.errors import ClientError, ImageTooLarge, InvalidBase64
from models import get_spec
from models.preprocess import prepare_image
from tests.conftest import encode, noise_image, photo

DATA = bytes(range(256)) * 4 + b"\xfb\xff\xbf" * 20  # standard base64 of this has '+' and '/'
MiB = 1024 * 1024


# --- decode_base64 -----------------------------------------------------------------------


def test_plain_base64():
    assert decode_base64(base64.b64encode(DATA).decode(), MiB) == DATA


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "application/octet-stream"])
def test_data_url(mime):
    assert decode_base64(f"data:{mime};base64,{base64.b64encode(DATA).decode()}", MiB) == DATA


def test_whitespace_and_newlines_are_ignored():
    wrapped = base64.encodebytes(DATA).decode()  # 76-column lines
    assert "\n" in wrapped
    assert decode_base64(f"  \n{wrapped}\r\n  ", MiB) == DATA
    spaced = " ".join(base64.b64encode(DATA).decode()[i : i + 10] for i in range(0, 2000, 10))
    assert decode_base64("data:image/png;base64,\n" + spaced, MiB) == DATA


def test_urlsafe_alphabet():
    text = base64.urlsafe_b64encode(DATA).decode()
    assert "-" in text and "_" in text
    assert decode_base64(text, MiB) == DATA


@pytest.mark.parametrize("text", ["not base64!!", "abc", "QUJD$", "////====x", "data:image/png;base64,%%%"])
def test_invalid_base64(text):
    with pytest.raises(InvalidBase64) as info:
        decode_base64(text, MiB)
    assert info.value.code == "invalid_base64" and info.value.status == 400
    assert info.value.to_json()["error"] == "invalid_base64"


def test_data_url_must_be_base64():
    with pytest.raises(InvalidBase64, match="must be base64-encoded"):
        decode_base64("data:image/png," + base64.b64encode(DATA).decode(), MiB)


def test_over_size_is_refused_before_decoding():
    text = base64.b64encode(b"\0" * 3000).decode()
    with pytest.raises(ImageTooLarge) as info:
        decode_base64(text, 2999)
    assert info.value.status == 413 and info.value.code == "image_too_large"
    assert "2,999 bytes" in str(info.value)
    with pytest.raises(ImageTooLarge):  # even when the rest is garbage: nothing is decoded
        decode_base64("A" * 8000 + "!!", 1000)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 12, 1000])
def test_a_payload_of_exactly_the_limit_is_accepted(size):
    data = b"\x07" * size
    assert decode_base64(base64.b64encode(data).decode(), size) == data
    with pytest.raises(ImageTooLarge):
        decode_base64(base64.b64encode(data + b"\x07").decode(), size)


# --- which image was sent ----------------------------------------------------------------


def test_single_ref_without_an_image():
    for args in ((None, None, None), (None, "", ""), (None, None, "")):
        with pytest.raises(ClientError) as info:
            single_ref(*args)
        assert info.value.code == "missing_image" and info.value.status == 400
        assert "got none" in str(info.value)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((Path("/tmp/tmpabcdefghcat.jpg"), "http://x.test/a.png", None), "`image` and `url`"),
        ((None, "http://x.test/a.png", "QUJD"), "`url` and `image_base64`"),
        ((Path("/tmp/tmpabcdefghcat.jpg"), "http://x.test/a.png", "QUJD"), "`image` and `url` and `image_base64`"),
    ],
)
def test_single_ref_with_two_images(args, named):
    with pytest.raises(ClientError) as info:
        single_ref(*args)
    assert info.value.code == "ambiguous_image" and info.value.status == 400
    assert f"got {named}" in str(info.value)


def test_single_ref_labels():
    upload = Path("/tmp/tmpabcdefghcat.jpg")
    assert single_ref(upload, None, None) == ImageRef(upload=upload, label="upload:cat.jpg")
    assert single_ref(None, "http://x.test/a.png", "") == ImageRef(url="http://x.test/a.png", label="url:http://x.test/a.png")
    assert single_ref(None, None, "QUJD") == ImageRef(base64="QUJD", label="base64[0]")


def test_many_refs_keeps_the_documented_order():
    uploads = [Path("/tmp/tmp12345678a.png"), Path("/tmp/tmp12345678b.png")]
    refs = many_refs(uploads, ["http://x.test/1", "http://x.test/2"], ["QUJD", "REVG"], limit=6)
    assert [r.label for r in refs] == [
        "upload:a.png", "upload:b.png", "url:http://x.test/1", "url:http://x.test/2", "base64[0]", "base64[1]",
    ]
    assert [r.upload for r in refs[:2]] == uploads
    assert [r.url for r in refs[2:4]] == ["http://x.test/1", "http://x.test/2"]
    assert [r.base64 for r in refs[4:]] == ["QUJD", "REVG"]


def test_many_refs_needs_at_least_one():
    with pytest.raises(ClientError) as info:
        many_refs([], [], [], limit=4)
    assert info.value.code == "missing_image"


def test_many_refs_enforces_the_limit():
    assert len(many_refs([], ["http://x.test/1"] * 2, ["QUJD"] * 2, limit=4)) == 4
    with pytest.raises(ClientError) as info:
        many_refs([], ["http://x.test/1"] * 3, ["QUJD"] * 2, limit=4)
    assert info.value.code == "too_many_items" and "5 images" in str(info.value) and "limit is 4" in str(info.value)


# --- uploads -----------------------------------------------------------------------------


@pytest.mark.parametrize("client_name", ["cat.jpg", "a.png", "my holiday photo.webp"])
def test_upload_name_strips_the_tempfile_prefix(client_name):
    with tempfile.NamedTemporaryFile(suffix=client_name) as tmp:  # what BentoML does
        assert Path(tmp.name).name != client_name
        assert upload_name(Path(tmp.name)) == client_name


@pytest.mark.parametrize("name", ["cat.jpg", "tmp", "tmpabcdefgh", "photo-tmpabcdefgh.png"])
def test_upload_name_leaves_other_names_alone(name):
    assert upload_name(Path("/somewhere") / name) == name


def run(coro):
    return asyncio.run(coro)


def test_read_bytes_of_an_upload(tmp_path):
    data = encode(photo())
    path = tmp_path / "tmpabcdefghphoto.jpg"
    path.write_bytes(data)
    loader = ImageLoader(IntakeSettings(max_image_bytes=len(data)))
    assert run(loader.read_bytes(ImageRef(upload=path))) == data


def test_read_bytes_refuses_a_large_upload(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(b"\0" * 1001)
    loader = ImageLoader(IntakeSettings(max_image_bytes=1000))
    with pytest.raises(ImageTooLarge) as info:
        run(loader.read_bytes(ImageRef(upload=path)))
    assert info.value.status == 413 and "1,001 bytes" in str(info.value)


def test_read_bytes_of_base64_uses_the_image_limit():
    loader = ImageLoader(IntakeSettings(max_image_bytes=100))
    assert run(loader.read_bytes(ImageRef(base64=base64.b64encode(b"x" * 99).decode()))) == b"x" * 99
    with pytest.raises(ImageTooLarge):
        run(loader.read_bytes(ImageRef(base64=base64.b64encode(b"x" * 300).decode())))


def test_read_bytes_of_a_loopback_url_is_refused_by_default():
    async def go():
        loader = ImageLoader(IntakeSettings())
        try:
            await loader.read_bytes(ImageRef(url="http://127.0.0.1:9/x.png"))
        finally:
            await loader.aclose()

    with pytest.raises(ClientError) as info:
        run(go())
    assert info.value.code == "url_not_allowed"


@pytest.mark.parametrize("img", [photo(), noise_image(640, 360, 1), noise_image(100, 400, 2).convert("RGBA")])
def test_load_for_model(tmp_path, img):
    spec = get_spec("clip", "tiny")
    data = encode(img, "PNG")
    path = tmp_path / "tmpabcdefghimg.png"
    path.write_bytes(data)
    loader = ImageLoader(IntakeSettings())
    from_upload = run(loader.load_for_model(ImageRef(upload=path), spec))
    from_b64 = run(loader.load_for_model(ImageRef(base64=base64.b64encode(data).decode()), spec))
    assert from_upload.dtype == np.uint8 and from_upload.shape == (224, 224, 3)
    expected = prepare_image(decode_image(data, IntakeSettings()).image, spec)
    np.testing.assert_array_equal(from_upload, expected)
    np.testing.assert_array_equal(from_b64, expected)


def test_load_returns_the_decoded_image(tmp_path):
    loader = ImageLoader(IntakeSettings())
    decoded = run(loader.load(ImageRef(base64=base64.b64encode(encode(photo(), "PNG")).decode())))
    assert decoded.format == "PNG" and decoded.image.mode == "RGB" and decoded.image.size == (512, 512)
    np.testing.assert_array_equal(np.asarray(decoded.image), np.asarray(photo()))


def test_load_for_model_with_jpeg_draft_stays_close_to_the_exact_pixels():
    """IMAGE_EMBED_JPEG_DRAFT: a 1920x1080 photo decoded at 1/4 scale, then resized as usual,
    within a few levels of the exact pipeline's pixels (docs/performance.md has the timings)."""
    spec = get_spec("clip", "tiny")
    data = encode(photo().resize((1920, 1080)), "JPEG", quality=90)
    ref = ImageRef(base64=base64.b64encode(data).decode())
    exact = run(ImageLoader(IntakeSettings()).load_for_model(ref, spec)).astype(int)
    drafted = run(ImageLoader(IntakeSettings(jpeg_draft=True)).load_for_model(ref, spec)).astype(int)
    np.testing.assert_array_equal(exact, prepare_image(decode_image(data, IntakeSettings()).image, spec))
    assert drafted.shape == exact.shape and not np.array_equal(drafted, exact)
    assert np.abs(drafted - exact).mean() < 2.0
