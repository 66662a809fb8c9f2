"""GET /thumbnail over HTTP on both back ends: made at index time, image/webp, replaced and
deleted with the item, 404 `{error, detail}` otherwise; seed 003's /thumbnail/{id}."""

from __future__ import annotations

import io
import json
import uuid
from urllib.parse import quote

import pytest
from PIL import Image

from tests.conftest import encode, photo
from tests.search.images import block_png

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def http(request):
    import httpx

    server = request.getfixturevalue("server" if request.param == "sqlite" else "pg_server")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def add(http, index: str, keys: list[str], images: list[bytes]) -> None:
    files = [("images", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    resp = http.post("/index_images", files=files, data={"index": index, "keys": json.dumps(keys)})
    assert resp.status_code == 200 and resp.json()["indexed"] == len(keys), resp.text


def thumbnail(http, index: str, key: str):
    return http.get(f"/thumbnail/{quote(index, safe='')}/{quote(key, safe='')}")


def test_stored_at_index_time_replaced_and_deleted(http):
    index = f"th-{uuid.uuid4().hex[:8]}"
    big = encode(photo().resize((1024, 768)), "JPEG")
    add(http, index, ["photos/astronaut.jpg", "blocks/1.png"], [big, block_png(1)])
    resp = thumbnail(http, index, "photos/astronaut.jpg")
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(resp.content)) as img:
        assert img.format == "WEBP" and img.size == (256, 192)  # fits 256 px, keeps the shape
    with Image.open(io.BytesIO(thumbnail(http, index, "blocks/1.png").content)) as img:
        assert img.size == (64, 64)  # small images are not enlarged
        before = img.convert("RGB").getpixel((4, 4))
    add(http, index, ["blocks/1.png"], [block_png(2)])  # replaced: its thumbnail too
    with Image.open(io.BytesIO(thumbnail(http, index, "blocks/1.png").content)) as img:
        assert img.convert("RGB").getpixel((4, 4)) != before
    assert http.post("/delete", json={"index": index, "keys": ["blocks/1.png"]}).status_code == 200
    gone = thumbnail(http, index, "blocks/1.png")
    assert gone.status_code == 404 and gone.json()["error"] == "key_not_found" and gone.json()["detail"]


def test_absent_answers_404_with_error_and_detail(http):
    for path, code in (("/thumbnail/no-such-index-x/a.png", "index_not_found"), ("/thumbnail/Bad%20Name!/a.png", None)):
        resp = http.get(path)
        assert 400 <= resp.status_code < 500 and set(resp.json()) == {"error", "detail"}
        if code:
            assert resp.status_code == 404 and resp.json()["error"] == code


def test_seed_003_route_is_the_default_index(http):
    key = f"seed-{uuid.uuid4().hex[:8]}.png"
    add(http, "default", [key], [block_png(3)])
    resp = http.get(f"/thumbnail/{key}")
    assert resp.status_code == 200 and resp.content == thumbnail(http, "default", key).content
    assert http.get("/thumbnail/never-indexed.png").json()["error"] == "key_not_found"
