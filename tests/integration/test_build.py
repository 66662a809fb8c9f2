"""`bentoml build` works offline, packs the models, and the built Bento serves."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from models import get_spec
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
    assert packed == {tiny_models["clip"], get_spec("clip").onnx_store_tag}  # torch's entry and ONNX Runtime's
    assert info["args"] == {"models": "clip"}  # a server of this Bento serves CLIP only


def test_the_lean_bento_has_no_pytorch_and_sets_its_environment(tiny_models, bentoml_home):
    built = bentoml_cli("build", ".", "--arg", "models=clip", "--arg", "engine=onnx", "--output", "tag")
    assert built.returncode == 0, built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    bento = bentoml_home / "bentos" / "image-embed" / tag.split(":")[1]
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "onnxruntime==" in requirements and "ftfy==" in requirements
    assert not {"torch", "torchvision", "open_clip_torch", "transformers", "timm"} & {
        line.split("==")[0] for line in requirements.splitlines()
    }
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "ARG BENTOML_DO_NOT_TRACK=true" in dockerfile and "build-essential" not in dockerfile
    # the container reads BENTOML_CONFIG at this path: the bundle's files are under $BENTO_PATH/src
    assert "ARG BENTOML_CONFIG=/home/bentoml/bento/src/configuration.yaml" in dockerfile
    assert "ENV BENTO_PATH=$BENTO_PATH" in dockerfile and "ARG BENTO_PATH=/home/bentoml/bento" in dockerfile
    assert (bento / "src" / "configuration.yaml").is_file()
    info = json.loads(bentoml_cli("get", tag, "-o", "json").stdout)
    assert info["args"] == {"models": "clip", "engine": "onnx"}
    # the ONNX entry alone: no torch weights in the Bento
    assert {m["tag"] for svc in info["services"] for m in svc["models"]} == {get_spec("clip").onnx_store_tag}
    assert not list((bento / "models").rglob("*.safetensors"))


def test_the_lean_bento_refuses_a_model_that_needs_pytorch(tiny_models):
    built = bentoml_cli("build", ".", "--arg", "models=clip,face", "--arg", "engine=onnx", "--output", "tag")
    assert built.returncode != 0
    assert "model 'face' cannot be served without PyTorch" in built.stderr + built.stdout
