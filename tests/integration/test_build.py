"""`bentoml build` works offline, packs the models, and the built Bento serves."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.conftest import ROOT, encode, photo
from tests.integration.conftest import BENTOML, server_env, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def bentoml_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BENTOML, *args], cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=300)


def test_build_offline_pack_models_and_serve(tiny_models):
    built = bentoml_cli("build", ".", "--output", "tag")
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    assert tag.startswith("image-embed:")

    info = json.loads(bentoml_cli("get", tag, "-o", "json").stdout)
    packed = {m["tag"] for svc in info["services"] for m in svc["models"]}
    assert set(tiny_models.values()) <= packed

    served = start_server(tag)
    try:
        resp = httpx.post(
            f"{served.url}/encode_image", files={"image": ("a.jpg", encode(photo(), "JPEG"))}, timeout=60
        )
        assert resp.status_code == 200, resp.text
        assert len(resp.json()) == 512
        ui = httpx.get(f"{served.url}/ui/search", timeout=30)  # the web UI's files are in the Bento
        assert ui.status_code == 200 and "/ui/static/search.js" in ui.text
        assert httpx.get(f"{served.url}/ui/static/ui.js", timeout=30).status_code == 200
    finally:
        served.stop()


def test_build_with_a_model_subset_packs_only_those(tiny_models):
    built = bentoml_cli("build", ".", "--arg", "models=clip", "--output", "tag")
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    info = json.loads(bentoml_cli("get", tag, "-o", "json").stdout)
    assert sorted(svc["name"] for svc in info["services"]) == ["clip_runner", "image_embed", "index_runner"]
    packed = {m["tag"] for svc in info["services"] for m in svc["models"]}
    assert packed == {tiny_models["clip"]}
    assert info["args"] == {"models": "clip"}  # a server of this Bento serves CLIP only
