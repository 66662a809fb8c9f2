"""The lean image for real: `bentoml build --arg models=clip --arg engine=onnx` (tiny profile),
`bentoml containerize`, `docker run` on 127.0.0.1; and two containers of it sharing one
PostgreSQL, as docs/deploy.md runs replicas.

The docker engine and the local base image come from scripts/docker_env.sh (docker_engine
fixture: skipped where docker cannot run, failed with --containers=require as in CI). The
build, start-up and stop times are printed under "container figures", not asserted
(bench/container.py measures them: `python -m bench --scenario container`).
"""

from __future__ import annotations

import json
import re
import uuid

import httpx
import numpy as np
import pytest

from bench.docker_images import build_bento, containerize, docker, image_size, modules_present, run_container
from tests.conftest import encode, noise_image, photo
from tests.integration.conftest import BENTOML, FIGURES, free_port, server_env, start_server
from tests.postgres import fresh_database, tcp_url

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.container]

LEAN_IMAGE = "image-embed-test:lean"
SIZE_LIMIT = 1_500_000_000  # bytes: the lean image's target
TORCH_STACK = ["torch", "torchvision", "open_clip", "transformers", "timm", "facenet_pytorch"]
GRACE_S = 10  # `docker stop`'s default grace period
# the container's environment: the tiny profile the Bento was built with, no URL inputs, the data volume
CONTAINER_ENV = {"IMAGE_EMBED_PROFILE": "tiny", "IMAGE_EMBED_URL_POLICY": "off", "IMAGE_EMBED_DATA_DIR": "/data"}
JPEG = encode(photo(), "JPEG")


@pytest.fixture(scope="module")
def lean_bento(tiny_models) -> str:
    return build_bento(BENTOML, server_env(), "--arg", "models=clip", "--arg", "engine=onnx")


@pytest.fixture(scope="module")
def lean_image(docker_engine, lean_bento) -> str:
    seconds = containerize(BENTOML, lean_bento, LEAN_IMAGE, server_env())
    FIGURES["lean image (tiny CLIP): bentoml containerize"] = f"{seconds:.0f} s"
    FIGURES["lean image (tiny CLIP): size"] = f"{image_size(LEAN_IMAGE) / 1e6:.0f} MB"
    return LEAN_IMAGE


@pytest.fixture(scope="module")
def container(lean_image):
    port = free_port()
    box = run_container(
        lean_image, url=f"http://127.0.0.1:{port}", options=("-p", f"127.0.0.1:{port}:3000"),
        env=CONTAINER_ENV, volumes=[f"image-embed-test-{uuid.uuid4().hex[:8]}"],
    )
    FIGURES["lean container (tiny CLIP): docker run -> /readyz 200"] = f"{box.ready_s:.1f} s"
    yield box
    box.remove()


@pytest.fixture(scope="module")
def host_server(lean_bento):
    """The host's own `bentoml serve` of the same Bento."""
    srv = start_server(lean_bento)
    yield srv
    srv.stop()


def post(server, path: str, **request):
    """POST to a container or the host server (anything with a `url`)."""
    return httpx.post(f"{server.url}{path}", timeout=60, **request)


def server_errors(box) -> list[str]:
    """The container's log lines that show a server error: a 5xx in the gateway's JSON access
    log, or a traceback."""
    return [line for line in box.logs(tail=100_000).splitlines() if re.search(r'"status":5\d\d|Traceback', line)]


def cosine(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_lean_image_has_no_pytorch_and_fits(lean_image):
    assert modules_present(lean_image, [*TORCH_STACK, "onnxruntime"]) == ["onnxruntime"]
    assert image_size(lean_image) <= SIZE_LIMIT
    find = ("run", "--rm", "--entrypoint", "find", lean_image, "/home/bentoml/bento/models", "-type", "f")
    models = docker(*find).stdout
    assert "/onnx/image.fp32.onnx" in models and "/onnx/text.int8.onnx" in models
    assert ".safetensors" not in models  # the torch weights stay on the build machine


def test_it_is_ready_and_serves_clip_on_onnx_runtime(container):
    assert httpx.get(f"{container.url}/readyz", timeout=30).status_code == 200
    health = httpx.get(f"{container.url}/health", timeout=30).json()
    assert health["served_models"] == ["clip"]
    assert health["models"]["clip"]["engine"] == "onnx"
    assert health["models"]["clip"]["logit_scale"] == pytest.approx(1 / 0.07)  # stored: no weights here
    assert health["models"]["index"]["data_dir"] == "/data"


def test_encode_image_equals_the_hosts_own_serve(container, host_server):
    vectors = [post(server, "/encode_image", files={"image": ("a.jpg", JPEG)}) for server in (container, host_server)]
    assert [r.status_code for r in vectors] == [200, 200], vectors[0].text
    assert len(vectors[0].json()) == 512
    assert cosine(vectors[0].json(), vectors[1].json()) >= 0.99999


def test_encode_text_works_and_equals_the_hosts(container, host_server):
    texts = ["a photo of an astronaut", "Ça, c'est “joli” 東京 🚀 " * 20]  # unicode, past 77 tokens
    got = post(container, "/encode_texts", json={"texts": texts})
    assert got.status_code == 200, got.text
    want = post(host_server, "/encode_texts", json={"texts": texts}).json()
    for vector, reference in zip(got.json(), want):
        assert len(vector) == 512 and abs(np.linalg.norm(vector) - 1) < 1e-4
        assert cosine(vector, reference) >= 0.99999


def test_rank_equals_the_hosts(container, host_server):
    request = {"files": {"image": ("a.jpg", JPEG)}, "data": {"texts": json.dumps(["an astronaut", "a cat", "a car"])}}
    got, want = (post(server, "/rank", **request) for server in (container, host_server))
    assert got.status_code == 200, got.text
    assert got.json()["logit_scale"] == pytest.approx(want.json()["logit_scale"])
    assert [r["index"] for r in got.json()["results"]] == [r["index"] for r in want.json()["results"]]
    for ours, theirs in zip(got.json()["results"], want.json()["results"]):
        assert abs(ours["probability"] - theirs["probability"]) < 1e-4


def test_bad_input_gets_its_4xx(container):
    garbage = post(container, "/encode_image", files={"image": ("a.jpg", b"not an image" * 100)})
    assert garbage.status_code == 415 and garbage.json()["error"] == "unsupported_image_format"
    tiny = post(container, "/encode_image", files={"image": ("a.png", encode(noise_image(1, 1), "PNG"))})
    assert tiny.status_code == 400 and set(tiny.json()) >= {"error", "detail"}
    url = post(container, "/encode_image", json={"url": "http://127.0.0.1:1/a.jpg"})
    assert 400 <= url.status_code < 500 and set(url.json()) >= {"error", "detail"}  # URL inputs are off
    empty = post(container, "/encode_text", json={"text": ""})
    assert empty.status_code == 400 and set(empty.json()) >= {"error", "detail"}
    assert httpx.get(f"{container.url}/readyz", timeout=30).status_code == 200  # and it keeps serving


def test_the_index_lives_on_the_data_volume(container):
    indexed = post(container, "/index_images", files={"images": ("astronaut.jpg", JPEG)}, data={"index": "vol"})
    assert indexed.status_code == 200 and indexed.json()["indexed"] == 1, indexed.text
    stats = post(container, "/index_stats", json={"index": "vol"}).json()
    assert stats["count"] == 1 and stats["details"]["backend"] == "sqlite"


def test_docker_stop_ends_it_cleanly_within_the_grace_period(container):
    code, seconds = container.stop(GRACE_S)
    FIGURES["lean container: docker stop"] = f"{seconds:.1f} s"
    assert code == 0, container.logs()
    assert seconds < GRACE_S  # ended by itself: docker did not need its SIGKILL
    assert server_errors(container) == [], container.logs(200)  # nothing above answered 5xx


@pytest.fixture(scope="module")
def replicas(lean_image):
    """Two containers of the lean image on the host network, one PostgreSQL (the test's own,
    over TCP on 127.0.0.1): replicas behind a load balancer, as in docs/deploy.md."""
    search_url = tcp_url(fresh_database("replicas"))
    boxes = []
    try:
        for _ in range(2):
            port = free_port()
            env = {**CONTAINER_ENV, "IMAGE_EMBED_SEARCH_URL": search_url, "BENTOML_HOST": "127.0.0.1"}
            env["BENTOML_PORT"] = str(port)  # the host network: each its own port
            url = f"http://127.0.0.1:{port}"
            boxes.append(run_container(lean_image, url=url, options=("--network", "host"), env=env))
        yield boxes
    finally:
        for box in boxes:
            box.remove()


def test_an_item_indexed_through_one_replica_is_found_through_the_other(replicas):
    a, b = replicas
    indexed = post(a, "/index_images", files={"images": ("astronaut.jpg", JPEG)}, data={"index": "shared"})
    assert indexed.status_code == 200 and indexed.json()["indexed"] == 1, indexed.text
    got = post(b, "/get", json={"keys": ["astronaut.jpg"], "index": "shared"}).json()
    assert got["missing"] == [] and [item["key"] for item in got["items"]] == ["astronaut.jpg"]
    found = post(b, "/search_image", files={"image": ("q.jpg", JPEG)}, data={"index": "shared", "top_k": "1"})
    assert found.status_code == 200, found.text
    assert found.json()["results"][0]["key"] == "astronaut.jpg" and found.json()["results"][0]["score"] > 0.9999
    assert post(b, "/index_stats", json={"index": "shared"}).json()["details"]["backend"] == "postgresql"
    assert [server_errors(box) for box in replicas] == [[], []]


def test_the_container_benchmark_measures_the_lean_image(lean_image, tmp_path, monkeypatch):
    """bench/container.py (`python -m bench --scenario container`), one tiny run."""
    from bench import container as bench_container

    assert bench_container.main(["--profile", "tiny", "--runs", "1", "--json", str(tmp_path / "r.json")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert 0 < result["size_mb"] <= SIZE_LIMIT / 1e6 and result["containerize_s"] > 0
    assert result["runs"][0]["exit_code"] == 0 and 0 < result["runs"][0]["ready_s"] < 300
    docker("image", "rm", result["image"], check=False)
