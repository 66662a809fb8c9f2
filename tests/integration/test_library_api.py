"""The library over HTTP on both back ends (the session's SQLite server and the PostgreSQL one):
seed 003's GET /browse, POST /rating/{image_id}, GET /tags and POST /tags/bulk, the BentoML
APIs browse, set_rating, tags, tag_items and index_vectors (also through BentoML's client),
the search APIs' label filters, and pHash duplicates of real photos."""

from __future__ import annotations

import json
import uuid

import bentoml
import numpy as np
import pytest
from PIL import Image

from tests.conftest import encode
from tests.search.images import block_png

pytestmark = pytest.mark.integration

KEYS = [f"album/{i:02d}.png" for i in range(12)]  # keys with "/": the seed's paths


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def lib_server(request):
    return request.getfixturevalue("server" if request.param == "sqlite" else "pg_server")


@pytest.fixture(scope="module")
def http(lib_server):
    import httpx

    with httpx.Client(base_url=lib_server.url, timeout=60) as client:
        yield client


@pytest.fixture()
def index(http) -> str:
    """A new index of 12 block images keyed KEYS."""
    name = f"lib-{uuid.uuid4().hex[:10]}"
    files = [("images", (f"{i}.png", block_png(700 + i), "image/png")) for i in range(len(KEYS))]
    meta = [{"n": i} for i in range(len(KEYS))]
    resp = http.post("/index_images", files=files, data={"index": name, "keys": json.dumps(KEYS), "metadata": json.dumps(meta)})
    assert resp.status_code == 200 and resp.json()["indexed"] == len(KEYS), resp.text
    return name


def error_of(resp) -> tuple[int, str]:
    body = resp.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    return resp.status_code, body["error"]


def test_seed_routes_shapes_filters_and_paging(http, index):
    assert http.post(f"/rating/{KEYS[1]}", params={"index": index}, json={"rating": 4}).json() == {"id": KEYS[1], "rating": 4}
    assert http.post("/set_rating", json={"keys": KEYS[2:6] + ["nope"], "rating": 3, "index": index}).json() == {
        "index": index, "rating": 3, "updated": 4, "missing": ["nope"],
    }
    bulk = http.post("/tags/bulk", params={"index": index}, json={"image_ids": KEYS[:6] + ["gone.png"], "add": ["beach", "2021"]})
    assert bulk.json() == {"index": index, "updated": 6, "missing": ["gone.png"]}
    http.post("/tags/bulk", params={"index": index}, json={"image_ids": KEYS[4:6], "remove": ["beach"], "hidden": True})

    tags = http.get("/tags", params={"index": index}).json()["tags"]
    assert [(t["name"], t["count"]) for t in tags] == [("beach", 4), ("2021", 6)]
    ids = {t["name"]: t["id"] for t in tags}

    page = http.get("/browse", params={"index": index, "page": 1, "per_page": 4}).json()
    assert set(page) == {"index", "page", "per_page", "total", "items"} and (page["page"], page["per_page"]) == (1, 4)
    assert page["total"] == 10 and [it["key"] for it in page["items"]] == KEYS[:4]  # by key, hidden left out
    first = page["items"][1]
    assert set(first) == {"id", "key", "rating", "tags", "hidden", "metadata", "thumbnail"}
    assert (first["id"], first["rating"], first["hidden"], first["metadata"]) == (KEYS[1], 4, False, {"n": 1})
    assert sorted(t["name"] for t in first["tags"]) == ["2021", "beach"]
    assert first["thumbnail"] == f"/thumbnail/{index}/album%2F01.png" and http.get(first["thumbnail"]).status_code == 200
    assert [it["key"] for it in http.get("/browse", params={"index": index, "page": 3, "per_page": 4}).json()["items"]] == KEYS[10:]

    rated = http.get("/browse", params={"index": index, "min_rating": 3, "tag_ids": f"{ids['beach']},{ids['2021']}"}).json()
    assert [it["key"] for it in rated["items"]] == KEYS[1:4] and rated["total"] == 3
    everything = http.post("/browse", json={"index": index, "include_hidden": True, "tag_ids": [ids["2021"]], "per_page": 200})
    assert [(it["key"], it["hidden"]) for it in everything.json()["items"]] == [(k, k in KEYS[4:6]) for k in KEYS[:6]]


def test_bad_input_is_a_clear_4xx(http, index):
    assert error_of(http.post("/rating/no/such/key.png", params={"index": index}, json={"rating": 2})) == (404, "key_not_found")
    assert error_of(http.post(f"/rating/{KEYS[0]}", params={"index": index}, json={"rating": 7})) == (400, "bad_rating")
    assert error_of(http.post(f"/rating/{KEYS[0]}", params={"index": index}, json={"stars": 2})) == (400, "invalid_request")
    assert error_of(http.post("/set_rating", json={"keys": [KEYS[0]], "rating": -1, "index": index}))[0] == 400
    assert error_of(http.get("/browse", params={"index": index, "tag_ids": "999"})) == (404, "tag_not_found")
    assert error_of(http.get("/browse", params={"index": index, "tag_ids": "1,x"})) == (400, "invalid_request")
    assert error_of(http.get("/browse", params={"index": index, "per_page": 201}))[0] == 400
    assert error_of(http.post("/search_text", json={"query": "x", "index": index, "tag_ids": [999]})) == (404, "tag_not_found")
    assert error_of(http.post("/search_text", json={"query": "x", "index": index, "min_rating": 6})) == (400, "bad_rating")
    assert error_of(http.post("/tags/bulk", params={"index": index}, json={"image_ids": KEYS[:1], "add": [""]}))[0] == 400
    assert error_of(http.get("/browse", params={"index": "no-such-index"})) == (404, "index_not_found")
    assert error_of(http.get("/browse", params={"index": index, "perpage": 4})) == (400, "invalid_request")  # a typo
    assert error_of(http.post("/browse", json={"index": index, "include_hidden": 0}))[0] == 400  # not a bool: a schema violation
    assert http.get(f"/rating/{KEYS[0]}").status_code == 405  # POST only
    assert error_of(http.post("/rating/a%0Aline%2Fbreak.png", params={"index": index}, json={"rating": 2})) == (404, "key_not_found")
    for path in ("/browse", "/tags"):  # GET here, POST the API's: both named
        resp = http.options(path)
        assert (resp.status_code, resp.headers["allow"]) == (405, "GET, POST")
    assert http.get("/tags", params={"index": index}).json()["tags"] == []  # nothing was written


def test_search_filters_apply_before_top_k(http, index):
    ranking = [h["key"] for h in http.post("/similar", json={"key": KEYS[0], "top_k": 11, "index": index}).json()["results"]]
    http.post("/tag_items", json={"keys": ranking[:3], "hidden": True, "index": index})
    hits = http.post("/similar", json={"key": KEYS[0], "top_k": 3, "index": index}).json()["results"]
    assert [h["key"] for h in hits] == ranking[3:6]
    hits = http.post("/similar", json={"key": KEYS[0], "top_k": 3, "index": index, "include_hidden": True}).json()["results"]
    assert [h["key"] for h in hits] == ranking[:3]
    http.post("/set_rating", json={"keys": ranking[5:], "rating": 5, "index": index})
    http.post("/tag_items", json={"keys": ranking[7:], "add": ["x"], "index": index})
    (x,) = [t["id"] for t in http.post("/tags", json={"index": index}).json()["tags"]]
    body = {"index": index, "top_k": 2, "offset": 1, "min_rating": 5, "tag_ids": [x]}
    vector = http.post("/get", json={"keys": [KEYS[0]], "index": index, "with_vectors": True}).json()["items"][0]["vector"]
    assert [h["key"] for h in http.post("/search_vector", json={**body, "vector": vector}).json()["results"]] == ranking[8:10]
    assert [h["key"] for h in http.post("/search_text", json={**body, "query": "blocks"}).json()["results"]]  # answers


def test_index_vectors_and_the_python_client(lib_server, http, index):
    dim = 512
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((3, dim))
    with bentoml.SyncHTTPClient(lib_server.url, server_ready_timeout=30) as client:
        answer = client.index_vectors(
            keys=["v/a", "v/b", "v/c"], vectors=(vectors * 3).tolist(), metadata=[{"from": "npy"}, None, None],
            ratings=[5, None, 2], tags=[["imported"], [], ["imported", "b"]], hidden=[None, True, None], index=index,
        )
        assert (answer["indexed"], answer["total"]) == (3, len(KEYS) + 3)
        got = client.get(keys=["v/a", "v/b", "v/c"], index=index, with_vectors=True)["items"]
        assert np.allclose([it["vector"] for it in got], vectors / np.linalg.norm(vectors, axis=1, keepdims=True), atol=5e-4)  # float16
        assert [(it["rating"], it["hidden"], sorted(it["tags"])) for it in got] == [(5, False, ["imported"]), (0, True, []), (2, False, ["b", "imported"])]
        assert client.search_vector(vector=vectors[0].tolist(), top_k=1, index=index)["results"][0]["key"] == "v/a"
        client.set_rating(keys=["v/b"], rating=1, index=index)
        client.tag_items(keys=["v/b"], add=["late"], hidden=False, index=index)
        tags = {t["name"]: t["count"] for t in client.tags(index=index)["tags"]}
        assert tags == {"imported": 2, "b": 1, "late": 1}
        page = client.browse(index=index, min_rating=1, per_page=10)
        assert [it["key"] for it in page["items"]] == ["v/a", "v/b", "v/c"]
    for bad, code in (
        ({"vectors": [[0.1] * 511]}, "invalid_item"),
        ({"vectors": [[float("nan")] * dim]}, "invalid_item"),
        ({"vectors": [[0.0] * dim]}, "invalid_item"),
        ({"vectors": [[0.1] * dim], "ratings": [9]}, "bad_rating"),
        ({"vectors": [[0.1] * dim], "phashes": ["xyz"]}, "invalid_item"),
        ({"vectors": [[0.1] * dim], "thumbnails": ["bm90IGEgd2VicA=="]}, "invalid_item"),
    ):
        resp = http.post("/index_vectors", content=json.dumps({"keys": ["bad"], "index": index, **bad}), headers={"content-type": "application/json"})
        assert error_of(resp) == (400, code), bad
    resp = http.post("/index_vectors", json={"keys": [f"k{i}" for i in range(1001)], "vectors": [[0.1] * 4] * 1001, "index": index})
    assert error_of(resp) == (400, "too_many_items")
    assert http.post("/get", json={"keys": ["bad"], "index": index}).json()["missing"] == ["bad"]


def test_phash_duplicates_of_real_photos(http):
    """A JPEG re-encoded at another quality and a resized copy are found; different photos
    (scikit-image's) are not, by CLIP's cosine under random weights they would all look alike."""
    import skimage.data

    index = f"photos-{uuid.uuid4().hex[:8]}"
    photos = {name: Image.fromarray(getattr(skimage.data, name)()).convert("RGB") for name in ("astronaut", "chelsea", "coffee", "rocket", "camera")}
    files = [(f"{n}.png", encode(im, "PNG")) for n, im in photos.items()]
    files += [("astronaut-q30.jpg", encode(photos["astronaut"], "JPEG", quality=30))]
    files += [("astronaut-small.jpg", encode(photos["astronaut"].resize((200, 200)), "JPEG", quality=90))]
    files += [("coffee-q50.jpg", encode(photos["coffee"], "JPEG", quality=50))]
    resp = http.post("/index_images", files=[("images", (n, b, "image/png")) for n, b in files], data={"index": index})
    assert resp.json()["indexed"] == len(files), resp.text
    found = http.post("/find_duplicates", json={"index": index, "method": "phash"}).json()
    assert (found["method"], found["max_distance"], found["threshold"]) == ("phash", 5, None)
    groups = [[it["key"] for it in g["items"]] for g in found["groups"]]
    assert groups == [["astronaut-q30.jpg", "astronaut-small.jpg", "astronaut.png"], ["coffee-q50.jpg", "coffee.png"]]
    assert all(it["distance"] <= 5 and len(it["phash"]) == 16 for g in found["groups"] for it in g["items"])
    # hide all but one of a group: it is no longer a group
    http.post("/tag_items", json={"index": index, "keys": ["astronaut-q30.jpg", "astronaut-small.jpg"], "hidden": True})
    again = http.post("/find_duplicates", json={"index": index, "method": "phash"}).json()
    assert [[it["key"] for it in g["items"]] for g in again["groups"]] == [["coffee-q50.jpg", "coffee.png"]]
    assert error_of(http.post("/find_duplicates", json={"index": index, "method": "md5"})) == (400, "bad_method")
    assert error_of(http.post("/find_duplicates", json={"index": index, "method": "phash", "max_distance": 40}))[0] == 400
