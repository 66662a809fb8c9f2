"""The bad-input battery across every API, not only encode_image.

Every POST route of the served OpenAPI gets malformed JSON, a JSON value that is not an
object, and each of its fields with a wrong type; then the limits: huge task lists, huge
`top_k`, unicode and very long keys, texts and index names. Each must be a 4xx with the
JSON error shape `{"error", "detail"}`; nothing is a 5xx, and the server keeps serving.
"""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.conftest import encode, photo

pytestmark = pytest.mark.integration

PNG_B64 = base64.b64encode(encode(photo().resize((64, 64)), "PNG")).decode()
LONG = "é" * 200_000  # 200k characters, 400 kB of UTF-8
TRICKY = ["\u0000", "\U0001F600" * 3, "\u202etxt.exe", "a\u0301" * 50, "\U0001F468\u200d\U0001F469\u200d\U0001F467"]
# JSON with a lone surrogate: valid JSON text, not valid Unicode.
LONE_SURROGATE = '"\\ud800"'


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def post_routes(http) -> dict[str, dict]:
    """path -> the JSON schema of its request body, from the served OpenAPI."""
    spec = http.get("/docs.json").json()
    routes = {}
    for path, ops in spec["paths"].items():
        op = ops.get("post")
        if not op or "requestBody" not in op:
            continue
        content = op["requestBody"]["content"]
        schema = (content.get("application/json") or content.get("multipart/form-data") or {}).get("schema", {})
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        routes[path] = schema
    assert len(routes) >= 20, sorted(routes)  # every API: encode, analyze, search, index, seeds
    return routes


def assert_client_error(resp: httpx.Response, *, status: int | None = None, mentions: str | None = None) -> dict:
    assert 400 <= resp.status_code < 500, (resp.request.url.path, resp.status_code, resp.text[:500])
    if status is not None:
        assert resp.status_code == status, resp.text[:500]
    body = resp.json()
    if resp.request.url.path.startswith("/v1/"):  # the OpenAI-compatible routes answer OpenAI's shape
        assert isinstance(body, dict) and {"message", "type", "param", "code"} <= set(body["error"]), body
        body = {"error": body["error"]["code"], "detail": body["error"]["message"]}
    assert isinstance(body, dict) and {"error", "detail"} <= set(body), body
    if mentions is not None:
        assert mentions in str(body["detail"]), body
    return body


def wrong_value(prop: dict):
    """A JSON value of a type the property does not accept."""
    types = {prop.get("type")} | {alt.get("type") for alt in prop.get("anyOf", [])}
    if "array" in types:
        return {"not": "a list"}
    if "object" in types:
        return ["not", "an", "object"]
    return {"not": ["a", "scalar"]}


def test_malformed_json_everywhere(http, post_routes):
    for path in post_routes:
        resp = http.post(path, content=b'{"oops": ', headers={"Content-Type": "application/json"})
        assert_client_error(resp, status=400)


@pytest.mark.parametrize("body", ["[1, 2, 3]", '"just a string"', "null", "42"])
def test_json_that_is_not_an_object_everywhere(http, post_routes, body):
    for path in post_routes:
        resp = http.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
        assert_client_error(resp)


def test_every_field_with_a_wrong_type(http, post_routes):
    checked = 0
    for path, schema in post_routes.items():
        for name, prop in schema.get("properties", {}).items():
            if prop.get("format") == "binary" or any(a.get("format") == "binary" for a in prop.get("anyOf", [])):
                continue  # file fields take uploads; JSON for them is covered in test_bad_inputs
            resp = http.post(path, json={name: wrong_value(prop)})
            assert_client_error(resp)
            checked += 1
    assert checked >= 40


def test_lone_surrogates_in_text_fields(http):
    for path, field in [("/encode_text", "text"), ("/search_text", "query"), ("/similar", "key")]:
        resp = http.post(path, content=f'{{"{field}": {LONE_SURROGATE}}}'.encode(), headers={"Content-Type": "application/json"})
        assert resp.status_code < 500, (path, resp.text)


def test_huge_task_lists(http):
    tasks = [{"operation_id": f"t{i}", "type": "embed_clip_vit_b_32"} for i in range(20_000)]
    body = assert_client_error(http.post("/analyze", json={"image_base64": PNG_B64, "tasks": tasks}), status=400)
    assert "32" in str(body["detail"])
    assert_client_error(http.post("/analyze_image/", json={"image_url": "http://127.0.0.1:9/a.png", "tasks": tasks}), status=400)


def test_tasks_with_unicode_and_very_long_ids_and_types(http):
    odd = [{"operation_id": t, "type": "embed_clip_vit_b_32"} for t in TRICKY]
    resp = http.post("/analyze", json={"image_base64": PNG_B64, "tasks": odd})
    assert resp.status_code == 200, resp.text  # unicode operation ids are fine keys
    assert list(resp.json()["results"]) == TRICKY
    assert_client_error(http.post("/analyze", json={"image_base64": PNG_B64, "tasks": [{"operation_id": "a", "type": LONG}]}))
    assert_client_error(
        http.post("/analyze", json={"image_base64": PNG_B64, "tasks": [{"operation_id": LONG, "type": "embed_clip_vit_b_32"}]})
    )


@pytest.mark.parametrize("top_k", [0, -1, 1001, 10**9, 2**63, 10**30])
def test_huge_and_negative_top_k(http, top_k):
    for path, body in [
        ("/search_text", {"query": "a cat"}),
        ("/search_vector", {"vector": [0.1] * 512}),
        ("/similar", {"key": "anything"}),
    ]:
        assert_client_error(http.post(path, json={**body, "top_k": top_k}))


def test_unicode_and_very_long_keys(http):
    index = "robustness-keys"
    keys = [k for k in TRICKY if "\u0000" not in k]
    resp = http.post("/index_images", json={"images_base64": [PNG_B64] * len(keys), "keys": keys, "index": index})
    assert resp.status_code == 200, resp.text
    assert resp.json()["indexed"] == len(keys)
    got = http.post("/get", json={"keys": keys, "index": index}).json()
    assert sorted(item["key"] for item in got["items"]) == sorted(keys)  # stored and returned as sent

    # NUL and overlong keys: the item fails with a reason, the call does not
    resp = http.post("/index_images", json={"images_base64": [PNG_B64, PNG_B64], "keys": ["a\u0000b", LONG], "index": index})
    assert resp.status_code == 200, resp.text
    assert [r["error"]["error"] for r in resp.json()["results"]] == ["invalid_item", "invalid_item"]
    for path, body in [("/similar", {"key": LONG}), ("/get", {"keys": [LONG]}), ("/delete", {"keys": [LONG]})]:
        resp = http.post(path, json={**body, "index": index})
        assert resp.status_code in (200, 400, 404), (path, resp.status_code, resp.text[:300])
        if resp.status_code != 200:
            assert_client_error(resp)


@pytest.mark.parametrize("name", ["../etc", "a/b", "", LONG[:1000], "\u00e9t\u00e9", ".", "x\u0000"])
def test_bad_index_names(http, name):
    for path, body in [("/search_text", {"query": "a cat"}), ("/index_stats", {}), ("/similar", {"key": "k"})]:
        assert_client_error(http.post(path, json={**body, "index": name}))


def test_very_long_and_unicode_texts(http):
    assert_client_error(http.post("/encode_text", json={"text": LONG}), status=400, mentions="10,000")
    assert_client_error(http.post("/search_text", json={"query": LONG}), status=400)
    assert_client_error(http.post("/encode_texts", json={"texts": ["a"] * 100_000}), status=400, mentions="256")
    resp = http.post("/encode_texts", json={"texts": TRICKY})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()) == len(TRICKY)


def test_wrong_vectors(http):
    for vector in ([], [0.0] * 512, [1.0] * 3, [1.0] * 200_000):
        assert_client_error(http.post("/search_vector", json={"vector": vector}))
    resp = http.post("/search_vector", content=b'{"vector": [NaN, 1.0]}', headers={"Content-Type": "application/json"})
    assert_client_error(resp)


def test_server_is_healthy_after_the_battery(http):
    assert http.get("/readyz").status_code == 200
    assert http.get("/health").json()["status"] == "healthy"
    assert http.post("/encode_text", json={"text": "still here"}).status_code == 200
