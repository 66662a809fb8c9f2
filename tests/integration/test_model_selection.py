"""Serving a subset of the models: `bentoml serve . --arg models=...` (or IMAGE_EMBED_MODELS).

Only the chosen runners (and the index runner) start, only their weights must be in the
store, the other APIs are out of the schema and answer 404 model_not_served, and analyze
tasks that need a missing model fail alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import httpx
import psutil
import pytest

from tests.conftest import ROOT, encode, photo
from tests.integration.conftest import BENTOML, free_port, server_env, start_server

pytestmark = pytest.mark.integration
JPEG = encode(photo(), "JPEG")


def service_names(server) -> list[str]:
    """The BentoML worker processes of a server, by the service each one runs."""
    names = []
    for proc in psutil.Process(server.process.pid).children(recursive=True):
        cmd = proc.cmdline()
        if "--service-name" in cmd:
            names.append(cmd[cmd.index("--service-name") + 1])
    return sorted(names)


@pytest.fixture(scope="module")
def clip_only():
    """models=clip on a model store holding CLIP's weights and nothing else, with
    engine=onnx (ONNX Runtime alone, as the lean image serves it), started by the service's
    short name as the replaced services documented it: `bentoml serve service:svc`."""
    home = tempfile.mkdtemp(prefix="bentoml-home-clip-only-")
    env = {**os.environ, "BENTOML_HOME": home, "IMAGE_EMBED_PROFILE": "tiny"}
    subprocess.run(
        [sys.executable, "-m", "cli", "import-models", "--profile", "tiny", "--models", "clip"],
        cwd=ROOT, env=env, check=True, capture_output=True, timeout=300,
    )
    models = sorted(os.listdir(os.path.join(home, "models")))
    assert models == [m for m in models if m.startswith("clip-")] and models, models
    srv = start_server("service:svc", args=("--arg", "models=clip", "--arg", "engine=onnx"), BENTOML_HOME=home)
    yield srv
    srv.stop()


@pytest.fixture()
def clip_http(clip_only):
    with httpx.Client(base_url=clip_only.url, timeout=60) as client:
        yield client


def test_only_the_clip_and_index_runners_start(clip_only):
    assert service_names(clip_only) == ["clip_runner", "image_embed", "index_runner"]


def test_the_short_name_serves_and_engine_onnx_runs_clip_on_onnx_runtime(clip_only, clip_http):
    assert "service:svc" in clip_only.process.args
    clip = clip_http.get("/health").json()["models"]["clip"]
    assert (clip["engine"], clip["precision"]) == ("onnx", "fp32")
    assert len(clip_http.post("/encode_text", json={"text": "a cat"}).json()) == 512


def test_unserved_apis_are_out_of_the_schema_and_answer_404_naming_the_model(clip_http):
    paths = set(clip_http.get("/docs.json").json()["paths"])
    assert {"/encode_image", "/encode_text", "/analyze", "/analyze_images", "/search_text", "/embed-image"} <= paths
    assert not {"/encode_internvit", "/encode_internvit_levels", "/embedding/fast_extract", "/embedding/test_extract"} & paths
    for path, model in [("/encode_internvit", "internvit"), ("/embedding/fast_extract", "dinov2_giant")]:
        resp = clip_http.post(path, json={"url": "http://127.0.0.1:1/a.jpg"})
        assert resp.status_code == 404
        body = resp.json()
        assert body["error"] == "model_not_served"
        assert f"the {model} model" in body["detail"] and "--arg models=" in body["detail"]


def test_health_and_root_list_the_served_models_and_readyz_waits_for_them(clip_http):
    health = clip_http.get("/health")
    assert health.status_code == 200
    assert set(health.json()["models"]) == {"clip", "index"}
    assert health.json()["served_models"] == ["clip"]
    assert [m["key"] for m in clip_http.get("/").json()["models"]] == ["clip"]
    ready = clip_http.get("/readyz")  # BentoML's probe: its 200 has no body (docs/api.md says so)
    assert ready.status_code == 200 and ready.text.strip() == ""


def test_available_operations_lists_what_the_served_models_can_do(clip_http):
    ops = clip_http.get("/available_operations/").json()["operations"]
    assert sorted(ops) == ["classify", "embed_clip", "embed_clip_vit_b_32"]
    assert ops["embed_clip_vit_b_32"]["allowed_targets"] == ["whole_image"]


def test_a_task_needing_a_missing_model_fails_alone(clip_http):
    tasks = [
        {"operation_id": "clip", "type": "embed_clip_vit_b_32"},
        {"operation_id": "caption", "type": "describe_image"},
        {"operation_id": "person", "type": "detect_bounding_box", "params": {"target": "prominent_person"}},
        {"operation_id": "dino", "type": "embed_dino_v2"},
    ]
    resp = clip_http.post("/analyze", files={"image": ("a.jpg", JPEG)}, data={"tasks": json.dumps(tasks)})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert results["clip"]["status"] == "success" and len(results["clip"]["data"]) == 512
    for oid, model in [("caption", "caption"), ("person", "person"), ("dino", "dinov2")]:
        assert results[oid]["status"] == "error"
        assert f"needs the {model} model" in results[oid]["error_message"]


def test_search_works_with_clip_alone(clip_http):
    indexed = clip_http.post("/index_images", files={"images": ("astronaut.jpg", JPEG)}, data={"index": "sel"})
    assert indexed.status_code == 200 and indexed.json()["indexed"] == 1, indexed.text
    found = clip_http.post("/search_text", json={"query": "a person", "index": "sel"})
    assert found.status_code == 200 and found.json()["results"][0]["key"] == "astronaut.jpg"


def test_clip_and_face_run_face_tasks(tiny_models):
    srv = start_server(args=("--arg", "models=clip,face"))
    try:
        assert service_names(srv) == ["clip_runner", "face_runner", "image_embed", "index_runner"]
        tasks = [
            {"operation_id": "box", "type": "detect_bounding_box",
             "params": {"target": "prominent_face", "face_context": "whole_image"}},
            {"operation_id": "vec", "type": "embed_clip_vit_b_32",
             "params": {"target": "prominent_face", "face_context": "whole_image"}},
        ]
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            ops = http.get("/available_operations/").json()["operations"]
            assert ops["detect_bounding_box"]["allowed_targets"] == ["prominent_face"]
            resp = http.post("/analyze", files={"image": ("a.jpg", JPEG)}, data={"tasks": json.dumps(tasks)})
        assert resp.status_code == 200, resp.text
        results = resp.json()["results"]
        assert results["box"]["status"] == "success" and len(results["box"]["data"]) == 4
        assert results["vec"]["status"] == "success" and results["vec"]["cropped_image_bbox"]
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("args", "env"), [(("--arg", "models=clip,nope"), {}), ((), {"IMAGE_EMBED_MODELS": "clip,bogus"})]
)
def test_an_unknown_model_name_stops_the_start(tiny_models, args, env):
    result = subprocess.run(
        [BENTOML, "serve", ".", "--host", "127.0.0.1", "--port", str(free_port()), *args],
        cwd=ROOT, env=server_env(**env), capture_output=True, text=True, timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "unknown model(s)" in out and "known models: " in out and "clip" in out
