"""Serving on ONNX Runtime needs no PyTorch (the lean image, `--arg engine=onnx`): with torch
and the model libraries unimportable, and a model store holding only what the lean Bento packs
(the models' ONNX entries), service.py imports, and every model ONNX Runtime runs alone (an
extra CLIP by name included) loads, answers each of its runner APIs and its runner's `info`
(what /health and /rank read); models that need torch are refused with the way out in the
message."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from config.sections import ModelSettings
from models import get_spec
from models.catalog.extra_clip import spec_of
from models.clip_tokenizer import TOKENIZER_FILE
from models.device import CPU, DeviceUnavailableError, select_device
from models.onnx_engine import EngineUnavailableError, runner_threads, torch_free_models
from models.open_clip_names import parse_entries
from models.selection import ServeArguments
from models.store import (
    ModelNotImportedError,
    entries,
    family_module,
    find,
    import_spec,
    load,
    loadable_dir,
    model_dir,
    onnx_dir,
    remove,
)
from tests.conftest import ROOT

NOT_IN_THE_LEAN_IMAGE = (
    "torch", "torchvision", "open_clip", "transformers", "timm", "facenet_pytorch", "onnx", "sklearn", "safetensors"
)
EXTRA_CLIP = "ViT-L-14/openai"  # a CLIP by name (IMAGE_EMBED_EXTRA_CLIP), described from the store

SCRIPT = textwrap.dedent(
    f"""
    import importlib.abc, json, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {NOT_IN_THE_LEAN_IMAGE!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (not in the lean image)")

    sys.meta_path.insert(0, NotInstalled())
    from bentoml._internal.utils.args import set_arguments

    set_arguments({{"engine": "onnx"}})  # bentoml build/serve --arg engine=onnx
    import service
    from models import get_spec
    from models.device import select_device
    from models.families import family_of
    from models.store import load
    from runners.define import hosted_apis, runner_info
    from runners.io import IO

    device = select_device()
    for key in service.SERVED:
        spec = get_spec(key)
        model = load(spec, device, service.START.engine)
        for api in family_of(spec).apis:
            out = getattr(model, api.method)(*IO[api.io].args(spec, IO[api.io].sample(spec)))
            print(key, api.method, out.shape, model.engine)
        limits = {{name: s.batch_limits(api.limits, "cpu") for name, s, api in hosted_apis([spec])}}
        info = runner_info(spec.runner, [spec], device, {{key: model}}, limits)
        print(key, "info", json.dumps(info["models"][key] if "models" in info else info))
    """
)


def lean_store(home, specs) -> list[str]:
    """A BENTOML_HOME at `home` whose model store holds what the lean Bento of `specs` packs:
    their entries for `--arg engine=onnx` (copied from the session's store). Their tags."""
    tags = [tag for spec in specs for tag in entries(spec, "onnx")]
    for tag in tags:
        name, version = tag.split(":")
        shutil.copytree(find(specs[0], tag).path, home / "models" / name / version)
        (home / "models" / name / "latest").write_text(version)
    return tags


def test_every_onnx_model_is_served_without_pytorch_from_the_lean_entries(tiny_models, tmp_path):
    extra = spec_of(parse_entries([EXTRA_CLIP])[0], "tiny")
    import_spec(extra)
    keys = torch_free_models("tiny")
    assert {"clip", "dinov2", "dinov2_giant", "dinov3", "internvit"} <= set(keys)
    tags = lean_store(tmp_path, [get_spec(key, "tiny") for key in keys] + [extra])
    assert all(tag.split(":")[0].endswith("-onnx") for tag in tags)  # no weights entry
    assert not list(tmp_path.rglob("*.safetensors"))
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "IMAGE_EMBED_EXTRA_CLIP": EXTRA_CLIP,
           "IMAGE_EMBED_MODELS": ",".join([*keys, extra.key]), "IMAGE_EMBED_DEVICE": "auto"}
    command = [sys.executable, "-c", SCRIPT]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    for key in ("clip", extra.key):
        dim = get_spec(key, "tiny").output_dim if key == "clip" else extra.output_dim
        assert f"{key} encode_texts (1, {dim}) onnx" in lines and f"{key} encode_images (1, {dim}) onnx" in lines
    assert {line.split()[0] for line in lines} == {*keys, extra.key}
    infos = {line.split()[0]: json.loads(line.split(" info ", 1)[1]) for line in lines if " info " in line}
    assert set(infos) == {*keys, extra.key} and {info["engine"] for info in infos.values()} == {"onnx"}
    assert abs(infos["clip"]["logit_scale"] - 1 / 0.07) < 1e-4  # open_clip's initial temperature (tiny weights)
    assert abs(infos[extra.key]["logit_scale"] - 1 / 0.07) < 1e-4


@pytest.mark.parametrize("key", ["person", "face", "caption"])
def test_models_that_need_torch_are_refused_with_the_way_out(tiny_models, key):
    refused = f"model '{key}' cannot be served without PyTorch.*Leave '{key}' out"
    with pytest.raises(EngineUnavailableError, match=refused):
        loadable_dir(get_spec(key, "tiny"), CPU, "onnx")
    assert loadable_dir(get_spec(key, "tiny"), CPU) == model_dir(get_spec(key, "tiny"))  # the full image serves it


def test_a_clip_whose_tokenizer_needs_open_clip_is_refused(tiny_models):
    spec = dataclasses.replace(get_spec("clip", "tiny"), seed=43)  # its own store tag
    import_spec(spec)
    path = onnx_dir(spec) / TOKENIZER_FILE
    with gzip.open(path, "wt", encoding="utf-8") as f:  # as a SigLIP-style (Hugging Face) tokenizer is stored
        json.dump({"format": "image-embed-text-tokenizer/1", "kind": "open_clip", "class": "HFTokenizer"}, f)
    try:
        with pytest.raises(EngineUnavailableError, match="text tokenizer \\(open_clip\\) needs open_clip and torch"):
            loadable_dir(spec, CPU, "onnx")
        assert load(spec, CPU).encode_texts(["a cat"]).shape == (1, 512)  # the full image: open_clip tokenizes
        path.unlink()  # an entry without its stored tokenizer: the import copies it from the weights entry
        command = "`image-embed import-models --profile tiny --models clip`"
        refusal = f"{TOKENIZER_FILE} not in {spec.onnx_store_tag}.*{command}"
        with pytest.raises(ModelNotImportedError, match=refusal):
            loadable_dir(spec, CPU, "onnx")
        assert import_spec(spec).added == (f"{TOKENIZER_FILE} to {spec.onnx_store_tag}",)
        assert loadable_dir(spec, CPU, "onnx") == onnx_dir(spec)
    finally:
        remove(spec)


def test_the_engine_argument_is_checked():
    assert ServeArguments(engine="onnx").engine == "onnx"
    assert ServeArguments(models="clip").engine is None
    with pytest.raises(ValueError, match="engine"):
        ServeArguments(engine="tensorrt")


def test_no_pytorch_means_the_cpu_and_a_clear_error_when_cuda_is_forced(monkeypatch):
    import models.device

    monkeypatch.setattr(models.device, "torch_installed", lambda: False)
    monkeypatch.setattr(models.device, "visible_gpu_count", lambda: 1)  # a GPU host running the lean image
    auto = ModelSettings(profile="tiny", device="auto", require_gpu=False)
    assert select_device(auto) == CPU
    assert models.device.probe_device_kind(auto) == "cpu"  # CPU batch limits too
    with pytest.raises(DeviceUnavailableError, match="no PyTorch"):
        select_device(auto.model_copy(update={"device": "cuda"}))


def test_runner_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runner_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    import torch

    assert runner_threads() == torch.get_num_threads()  # torch's own default, found without torch


def test_family_module_of_clip_is_importable_without_torch():
    """models.clip is what the ONNX engine imports for the tokenizer: torch only inside functions."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, models.clip; assert not {'torch', 'open_clip'} & set(sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert family_module(get_spec("clip", "tiny")).__name__ == "models.clip"
