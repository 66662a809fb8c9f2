"""Serving on ONNX Runtime needs no PyTorch (the lean image, `--arg engine=onnx`): with torch
and the model libraries unimportable, service.py imports, and every model ONNX Runtime runs
alone loads and answers each of its runner APIs; models that need torch are refused with the
way out in the message."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import subprocess
import sys
import textwrap

import pytest

from config.sections import ModelSettings
from models import get_spec
from models.clip_tokenizer import TOKENIZER_FILE
from models.device import DeviceChoice, DeviceUnavailableError, select_device
from models.onnx_engine import EngineUnavailableError, runner_threads, torch_free_models
from models.selection import ServeArguments
from models.store import ModelNotImportedError, family_module, import_spec, load, loadable_dir, model_dir
from tests.conftest import ROOT

CPU = DeviceChoice(device="cpu", dtype="float32", name="cpu")
NOT_IN_THE_LEAN_IMAGE = (
    "torch", "torchvision", "open_clip", "transformers", "timm", "facenet_pytorch", "onnx", "sklearn", "safetensors"
)

SCRIPT = textwrap.dedent(
    f"""
    import importlib.abc, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in {NOT_IN_THE_LEAN_IMAGE!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}} (not in the lean image)")

    sys.meta_path.insert(0, NotInstalled())
    import service
    from models import get_spec
    from models.device import select_device
    from models.families import family_of
    from models.store import load
    from runners.io import IO

    device = select_device()
    for key in service.SERVED:
        spec = get_spec(key)
        model = load(spec, device, "onnx")
        for api in family_of(spec).apis:
            out = getattr(model, api.method)(*IO[api.io].args(spec, IO[api.io].sample(spec)))
            print(key, api.method, out.shape, model.engine)
    """
)


def test_every_onnx_model_is_served_without_pytorch(tiny_models):
    keys = torch_free_models("tiny")
    assert {"clip", "dinov2", "dinov2_giant", "dinov3", "internvit"} <= set(keys)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "IMAGE_EMBED_MODELS": ",".join(keys), "IMAGE_EMBED_DEVICE": "auto"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert "clip encode_texts (1, 512) onnx" in lines and "clip encode_images (1, 512) onnx" in lines
    assert {line.split()[0] for line in lines} == set(keys)


@pytest.mark.parametrize("key", ["person", "face", "caption"])
def test_models_that_need_torch_are_refused_with_the_way_out(tiny_models, key):
    refused = f"model '{key}' cannot be served without PyTorch.*Leave '{key}' out"
    with pytest.raises(EngineUnavailableError, match=refused):
        loadable_dir(get_spec(key, "tiny"), CPU, "onnx")
    assert loadable_dir(get_spec(key, "tiny"), CPU) == model_dir(get_spec(key, "tiny"))  # the full image serves it


def test_a_clip_whose_tokenizer_needs_open_clip_is_refused(tiny_models):
    import bentoml

    spec = dataclasses.replace(get_spec("clip", "tiny"), seed=43)  # its own store tag
    import_spec(spec)
    path = model_dir(spec) / TOKENIZER_FILE
    with gzip.open(path, "wt", encoding="utf-8") as f:  # as a SigLIP-style (Hugging Face) tokenizer is stored
        json.dump({"format": "image-embed-text-tokenizer/1", "kind": "open_clip", "class": "HFTokenizer"}, f)
    try:
        with pytest.raises(EngineUnavailableError, match="text tokenizer \\(open_clip\\) needs open_clip and torch"):
            loadable_dir(spec, CPU, "onnx")
        assert load(spec, CPU).encode_texts(["a cat"]).shape == (1, 512)  # the full image: open_clip tokenizes
        path.unlink()  # an entry imported before the tokenizer was stored: re-import it
        with pytest.raises(ModelNotImportedError, match=f"{TOKENIZER_FILE}.*import_models.py --profile tiny"):
            loadable_dir(spec, CPU, "onnx")
    finally:
        bentoml.models.delete(spec.store_tag)


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
