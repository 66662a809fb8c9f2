"""`bentoml serve` refuses to start, at once and with the fix in the message, when a
required GPU is missing or a model was never imported (instead of a restart loop)."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import BENTOML, free_port, server_env

pytestmark = pytest.mark.integration


def serve_and_wait(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BENTOML, "serve", ".", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_require_gpu_without_a_gpu(tiny_models):
    result = serve_and_wait(server_env(IMAGE_EMBED_REQUIRE_GPU="1", IMAGE_EMBED_DEVICE="auto"))
    assert result.returncode != 0
    assert "IMAGE_EMBED_REQUIRE_GPU=1" in result.stderr + result.stdout
    assert "no GPU is visible" in result.stderr + result.stdout


def test_forcing_cuda_without_a_gpu(tiny_models):
    result = serve_and_wait(server_env(IMAGE_EMBED_DEVICE="cuda"))
    assert result.returncode != 0
    assert "IMAGE_EMBED_DEVICE=cuda" in result.stderr + result.stdout


def test_models_not_imported(tmp_path):
    result = serve_and_wait(server_env(BENTOML_HOME=str(tmp_path)))
    assert result.returncode != 0
    assert "image-embed import-models --profile tiny" in result.stderr + result.stdout


def test_unknown_profile():
    result = serve_and_wait(server_env(IMAGE_EMBED_PROFILE="huge"))
    assert result.returncode != 0
    assert "IMAGE_EMBED_PROFILE='huge' is unknown" in result.stderr + result.stdout


def test_bad_url_policy():
    result = serve_and_wait(server_env(IMAGE_EMBED_URL_POLICY="everything"))
    assert result.returncode != 0
    assert "IMAGE_EMBED_URL_POLICY='everything' is not one of public, allowlist, off" in result.stderr + result.stdout


def test_the_gpu_profile_starts_and_serves(tiny_models):
    # configuration-gpu.yaml on this CPU machine: the runners' GPU shares are harmless, and
    # its two gateway workers serve requests.
    import httpx

    from tests.conftest import encode, photo
    from tests.integration.conftest import start_server

    srv = start_server(BENTOML_CONFIG=str(ROOT / "configuration-gpu.yaml"))
    try:
        jpeg = encode(photo(), "JPEG")
        with httpx.Client(base_url=srv.url, timeout=60) as http:
            for _ in range(4):
                resp = http.post("/encode_image", files={"image": ("a.jpg", jpeg, "image/jpeg")})
                assert resp.status_code == 200 and len(resp.json()) == 512
            assert http.get("/readyz").status_code == 200
    finally:
        srv.stop()
