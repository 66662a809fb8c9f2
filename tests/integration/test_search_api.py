"""Every search API over HTTP on the tiny profile, on both back ends: the session's server
(embedded SQLite) and one on PostgreSQL (each test on its own index)."""

from __future__ import annotations

import base64
import json
import uuid

import bentoml
import numpy as np
import pytest

from search.backend import indexes_at
from search.manifest import Binding
from tests.search.images import block_png

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def search_server(request):
    return request.getfixturevalue("server" if request.param == "sqlite" else "pg_server")


@pytest.fixture()
def http(search_server):
    import httpx

    with httpx.Client(base_url=search_server.url, timeout=60) as client:
        yield client


@pytest.fixture()
def index() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def upload(seed: int, name: str | None = None):
    return ("images", (name or f"img{seed}.png", block_png(seed), "image/png"))


def add(http, index, seeds, keys=None, metadata=None):
    data = {"index": index}
    if keys is not None:
        data["keys"] = json.dumps(keys)
    if metadata is not None:
        data["metadata"] = json.dumps(metadata)
    resp = http.post("/index_images", files=[upload(s) for s in seeds], data=data)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_index_images_with_per_item_errors(http, index):
    b64 = base64.b64encode(block_png(3)).decode()
    resp = http.post(
        "/index_images",
        files=[upload(1), ("images", ("bad.jpg", b"%PDF-1.4 nope", "image/jpeg")), upload(2)],
        data={
            "images_base64": f'["{b64}", "{b64}"]',
            "keys": '["one", "bad", "two", "three", ""]',
            "metadata": '[{"album": "a"}, null, {"album": "b"}, null, null]',
            "index": index,
        },
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["indexed"], body["failed"], body["total"], body["index"]) == (3, 2, 3, index)
    errors = {r["key"]: r["error"] and r["error"]["error"] for r in body["results"]}
    assert errors == {"one": None, "bad": "unsupported_image_format", "two": None, "three": None, "": "invalid_item"}
    assert [r["position"] for r in body["results"]] == [0, 1, 2, 3, 4]


def test_default_keys_are_file_names(http, index):
    body = add(http, index, [4, 5])
    assert [r["key"] for r in body["results"]] == ["img4.png", "img5.png"]


def test_search_image_finds_itself(http, index):
    add(http, index, range(10), keys=[f"k{i}" for i in range(10)], metadata=[{"even": i % 2 == 0} for i in range(10)])
    resp = http.post("/search_image", files={"image": ("q.png", block_png(7), "image/png")}, data={"index": index, "top_k": "3"})
    hits = resp.json()["results"]
    assert resp.status_code == 200 and len(hits) == 3
    assert hits[0]["key"] == "k7" and hits[0]["score"] > 0.9999 and hits[0]["metadata"] == {"even": False}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    b64 = base64.b64encode(block_png(4)).decode()
    resp = http.post("/search_image", json={"image_base64": b64, "index": index, "filter": {"even": False}})
    assert resp.json()["results"][0]["key"] != "k4" and all(h["metadata"]["even"] is False for h in resp.json()["results"])
    resp = http.post("/search_image", json={"image_base64": b64, "index": index, "min_score": 0.9999})
    assert [h["key"] for h in resp.json()["results"]] == ["k4"]


def test_search_text_and_vector(http, index):
    add(http, index, range(6), keys=[f"k{i}" for i in range(6)])
    resp = http.post("/search_text", json={"query": "a photo of blocks", "top_k": 4, "index": index})
    assert resp.status_code == 200 and len(resp.json()["results"]) == 4
    stored = http.post("/get", json={"keys": ["k2"], "index": index, "with_vectors": True}).json()["items"][0]["vector"]
    resp = http.post("/search_vector", json={"vector": stored, "top_k": 2, "index": index})
    assert resp.json()["results"][0]["key"] == "k2" and resp.json()["results"][0]["score"] > 0.9999
    resp = http.post("/search_vector", json={"vector": [1.0, 2.0], "index": index})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_item"
    resp = http.post("/search_text", json={"query": "x", "top_k": 0, "index": index})
    assert resp.status_code == 400 and resp.json()["error"] == "bad_top_k"


def test_similar_get_delete(http, index):
    add(http, index, range(5), keys=["a/0.png", "a/1.png", "b/2.png", "b/3.png", "b/4.png"])
    resp = http.post("/similar", json={"key": "a/1.png", "top_k": 10, "index": index})
    assert resp.status_code == 200 and len(resp.json()["results"]) == 4
    assert "a/1.png" not in [h["key"] for h in resp.json()["results"]]
    resp = http.post("/similar", json={"key": "nope", "index": index})
    assert resp.status_code == 404 and resp.json()["error"] == "key_not_found"
    got = http.post("/get", json={"keys": ["a/0.png", "zz"], "index": index}).json()
    assert [i["key"] for i in got["items"]] == ["a/0.png"] and got["missing"] == ["zz"] and got["items"][0]["vector"] == []
    resp = http.post("/delete", json={"keys": ["a/0.png", "zz"], "index": index})
    assert resp.json() == {"index": index, "deleted": ["a/0.png"], "missing": ["zz"]}
    resp = http.post("/search_image", files={"image": ("q.png", block_png(0), "image/png")}, data={"index": index})
    assert "a/0.png" not in [h["key"] for h in resp.json()["results"]]


def test_similar_to_several_examples_and_paging(http, index):
    add(http, index, range(8), keys=[f"k{i}" for i in range(8)])
    stored = http.post("/get", json={"keys": [f"k{i}" for i in range(8)], "index": index, "with_vectors": True}).json()
    vecs = {it["key"]: np.asarray(it["vector"]) for it in stored["items"]}
    query = (vecs["k1"] + vecs["k2"]) / 2 - vecs["k5"]
    query /= np.linalg.norm(query)
    resp = http.post("/similar", json={"keys": ["k1", "k2"], "negative_keys": ["k5"], "top_k": 3, "index": index})
    hits = resp.json()["results"]
    assert resp.status_code == 200 and len(hits) == 3 and not {"k1", "k2", "k5"} & {h["key"] for h in hits}
    expected = sorted((k for k in vecs if k not in ("k1", "k2", "k5")), key=lambda k: -float(vecs[k] @ query))
    assert [h["key"] for h in hits] == expected[:3]
    assert hits[0]["score"] == pytest.approx(float(vecs[expected[0]] @ query), abs=1e-4)
    every = http.post("/search_vector", json={"vector": query.tolist(), "top_k": 10_000, "index": index}).json()["results"]
    page = http.post("/search_vector", json={"vector": query.tolist(), "top_k": 3, "offset": 2, "index": index}).json()["results"]
    assert len(every) == 8 and [h["key"] for h in page] == [h["key"] for h in every[2:5]]
    for body, code in (({"key": "k1", "offset": -1}, "bad_offset"), ({"key": "k1", "top_k": 10_001}, "bad_top_k"), ({}, "missing_key")):
        resp = http.post("/similar", json={**body, "index": index})
        assert resp.status_code == 400 and resp.json()["error"] == code
    resp = http.post("/similar", json={"keys": ["k1", "nope"], "index": index})
    assert resp.status_code == 404 and resp.json()["error"] == "key_not_found"


def test_drop_index(http, index):
    add(http, index, range(2))
    resp = http.post("/drop_index", json={"index": index})
    assert resp.status_code == 200 and resp.json() == {"index": index, "dropped": True}
    assert http.post("/index_stats", json={"index": index}).status_code == 404
    resp = http.post("/drop_index", json={"index": index})
    assert resp.status_code == 404 and resp.json()["error"] == "index_not_found"
    assert add(http, index, [3])["total"] == 1  # the name is free again


def test_index_stats(http, index, search_server):
    add(http, index, range(3))
    stats = http.post("/index_stats", json={"index": index}).json()
    assert stats["count"] == 3 and stats["dimension"] == 512
    assert (stats["index_type"], stats["details"]["backend"]) == (
        ("approximate", "postgresql") if search_server.search_url else ("exact", "sqlite")
    )
    assert stats["model"].startswith("clip-") and stats["bytes_on_disk"] > 3 * 512 * 4
    assert set(stats["last_snapshot"]) == {"lsn", "at", "age_s"}


def test_find_duplicates(http, index):
    add(http, index, [1, 2, 1, 3], keys=["x", "y", "x-copy", "z"])
    pairs = http.post("/find_duplicates", json={"threshold": 0.9999, "index": index}).json()["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [("x", "x-copy")] and pairs[0]["score"] > 0.9999


def test_verify_index_with_supplied_images(http, index):
    add(http, index, [1, 2], keys=["one", "two"])
    files = [upload(1), upload(2)]
    ok = http.post("/verify_index", files=files, data={"keys": '["one", "two"]', "index": index}).json()
    assert ok["ok"] and ok["checked"] == 2 and ok["min_cosine"] > 0.9999 and ok["problems"] == []
    swapped = http.post("/verify_index", files=files, data={"keys": '["two", "one"]', "index": index}).json()
    assert not swapped["ok"] and {m["key"] for m in swapped["mismatches"]} == {"one", "two"}
    assert all(m["cosine"] < 0.999 for m in swapped["mismatches"])


def test_unknown_index_and_bad_names(http):
    resp = http.post("/search_text", json={"query": "x", "index": "no-such-index"})
    assert resp.status_code == 404 and resp.json()["error"] == "index_not_found"
    resp = http.post("/index_images", files=[upload(1)], data={"index": "../escape"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_item"


def test_a_manifest_mismatch_is_refused_naming_both(http, index, search_server):
    place = search_server.search_url or http.get("/health").json()["models"]["index"]["data_dir"]
    other = indexes_at(place)
    other.get(index, Binding(model="some-other-clip:123", dim=512), create=True)
    other.close()
    resp = http.post("/search_text", json={"query": "x", "index": index})
    assert resp.status_code == 409 and resp.json()["error"] == "index_model_mismatch"
    assert "some-other-clip:123" in resp.json()["detail"] and "clip-" in resp.json()["detail"].split("this request uses")[1]
    resp = http.post("/index_images", files=[upload(1)], data={"index": index})
    assert resp.status_code == 409


def test_seed_003_routes(http):
    add(http, "default", [11, 12, 13], keys=["photos/2020/a.jpg", "photos/2020/b.jpg", "c.jpg"])
    resp = http.get("/search/text", params={"q": "blocks", "top_k": 2})
    assert resp.status_code == 200 and len(resp.json()["results"]) == 2
    resp = http.post("/search/image", files={"file": ("q.png", block_png(12), "image/png")})
    assert resp.status_code == 200 and resp.json()["results"][0]["key"] == "photos/2020/b.jpg"
    resp = http.get("/image/photos/2020/a.jpg/similar", params={"top_k": 5})
    assert resp.status_code == 200 and "photos/2020/a.jpg" not in [h["key"] for h in resp.json()["results"]]
    assert http.get("/image/nope.jpg/similar").status_code == 404
    stats = http.get("/stats").json()
    assert stats["index"] == "default" and stats["count"] >= 3
    assert http.get("/stats", params={"index": "no-such"}).status_code == 404


def test_python_client(search_server, index, tmp_path):
    paths = []
    for seed in (21, 22):
        path = tmp_path / f"{seed}.png"
        path.write_bytes(block_png(seed))
        paths.append(path)
    with bentoml.SyncHTTPClient(search_server.url, timeout=60) as client:
        body = client.index_images(images=paths, keys=["p21", "p22"], metadata=[{"n": 21}, None], index=index)
        assert body["indexed"] == 2
        hits = client.search_image(image=paths[1], top_k=1, index=index)["results"]
        assert hits[0]["key"] == "p22"
        assert client.get(keys=["p21"], index=index)["items"][0]["metadata"] == {"n": 21}
        assert client.similar(key="p21", index=index)["results"][0]["key"] == "p22"
        assert client.index_stats(index=index)["count"] == 2
        assert client.delete(keys=["p21"], index=index)["deleted"] == ["p21"]
        vec = np.asarray(client.get(keys=["p22"], index=index, with_vectors=True)["items"][0]["vector"])
        assert abs(np.linalg.norm(vec) - 1) < 1e-3  # stored as float16 (docs/search.md)


@pytest.mark.parametrize("path", ["/search/text?q=a&top_k=abc", "/image/k/similar?top_k=1.5", "/search/text"])
def test_get_routes_answer_bad_parameters_with_a_400_in_our_shape(http, path):
    resp = http.get(path)
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "invalid_request" and body["detail"] and body["detail"][0]["loc"][0] == "query"
