"""The open_clip family: materialize weights into a model-store folder, load them, encode.

A stored CLIP model is an open_clip `local-dir:` folder: `open_clip_config.json` (model and
preprocess config) beside `open_clip_model.safetensors`. open_clip itself can therefore load
exactly what the server loads (`create_model_and_transforms("local-dir:<path>")`), which is
what the parity tests do. Beside them, what serving reads without torch (SERVING_FILES, copied
into the model's ONNX entry by models/store.py): the text tokenizer open_clip builds for the
model (models/clip_tokenizer.py) and the logit scale of the weights (LOGIT_SCALE_FILE).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .clip_files import CONFIG_FILE, LOGIT_SCALE_FILE, SERVING_FILES, WEIGHTS_FILE  # noqa: F401 (SERVING_FILES: the entry's)
from .clip_tokenizer import TOKENIZER_FILE, export_tokenizer, load_tokenizer
from .device import DeviceChoice
from .hub import WeightsDownloadError, ensure_hub_reachable
from .preprocess import to_model_input
from .specs import ModelSpec

if TYPE_CHECKING:
    import torch



def _preprocess_cfg(spec: ModelSpec) -> dict:
    return {
        "size": spec.input_size,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "interpolation": spec.interpolation,
        "resize_mode": spec.resize_mode,
    }


def materialize(spec: ModelSpec, target: Path) -> None:
    """Write config and weights of `spec` into `target` (a new model-store folder)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    model_cfg = spec.arch_config or open_clip.get_model_config(spec.arch)
    if model_cfg is None:
        raise ValueError(f"open_clip has no architecture {spec.arch!r}")
    # OpenAI's weights were trained with QuickGELU: an architecture without it ("ViT-L-14")
    # gets it, as open_clip's force_quick_gelu does, so the stored config builds the right model.
    tag_cfg = {} if spec.random_weights else open_clip.get_pretrained_cfg(spec.arch, spec.pretrained)
    quick_gelu = bool(tag_cfg.get("quick_gelu"))
    if quick_gelu:
        model_cfg = {**model_cfg, "quick_gelu": True}
    (target / CONFIG_FILE).write_text(
        json.dumps({"model_cfg": model_cfg, "preprocess_cfg": _preprocess_cfg(spec)}, indent=2)
    )
    if spec.random_weights:
        torch.manual_seed(spec.seed)
        model = open_clip.create_model(f"local-dir:{target}", load_weights=False)
    else:
        _check_preprocess_matches_tag(spec, open_clip)
        ensure_hub_reachable(spec.weights_source)
        try:
            model = open_clip.create_model(spec.arch, pretrained=spec.pretrained, force_quick_gelu=quick_gelu)
        except Exception as exc:  # open_clip wraps hub/network errors in RuntimeError
            raise WeightsDownloadError(f"could not download {spec.weights_source}: {exc}") from exc
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(target / WEIGHTS_FILE))
    complete(spec, target)


def complete(spec: ModelSpec, folder: Path) -> list[str]:
    """Write the SERVING_FILES that `folder` (config and weights) lacks, from what is in it:
    offline (the tokenizer open_clip builds from the config, the OpenAI CLIPs' from open_clip's
    bundled vocabulary; the logit scale from the weights). An entry imported by an older version
    lacks some. Returns the names written."""
    folder = Path(folder)
    written = []
    if not (folder / TOKENIZER_FILE).is_file():
        import open_clip

        export_tokenizer(open_clip.get_tokenizer(f"local-dir:{folder}"), folder)
        written.append(TOKENIZER_FILE)
    if not (folder / LOGIT_SCALE_FILE).is_file():
        scale = _weights_logit_scale(str(folder / WEIGHTS_FILE))
        (folder / LOGIT_SCALE_FILE).write_text(json.dumps({"logit_scale": scale}) + "\n")
        written.append(LOGIT_SCALE_FILE)
    return written


def _check_preprocess_matches_tag(spec: ModelSpec, open_clip) -> None:
    """The spec's preprocessing must be what the weights were trained with."""
    cfg = open_clip.get_pretrained_cfg(spec.arch, spec.pretrained)
    if not cfg:
        raise ValueError(f"open_clip has no pretrained tag {spec.pretrained!r} for {spec.arch!r}")
    expected = (tuple(cfg["mean"]), tuple(cfg["std"]), cfg["interpolation"], cfg["resize_mode"])
    actual = (spec.mean, spec.std, spec.interpolation, spec.resize_mode)
    if expected != actual:
        raise ValueError(f"spec preprocessing {actual} differs from the pretrained tag's {expected}")


class ClipModel:
    """A loaded CLIP model. Inputs are the gateway's uint8 batches or raw strings;
    outputs are float32, L2-normalized numpy arrays (n, output_dim)."""

    def __init__(self, spec: ModelSpec, model_dir: Path, device: DeviceChoice) -> None:
        import open_clip
        import torch

        self.spec = spec
        self.device = device
        self.model_dir = Path(model_dir)
        self.dtype = torch.float16 if device.dtype == "float16" else torch.float32
        precision = "fp16" if device.dtype == "float16" else "fp32"
        self.model = open_clip.create_model(f"local-dir:{model_dir}", device=device.device, precision=precision)
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(f"local-dir:{model_dir}")

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = to_model_input(batch, self.spec, device=self.device.device, dtype=self.dtype)
            return _normalized(self.model.encode_image(x))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device.device)
            return _normalized(self.model.encode_text(tokens))


def graph_modules(model: ClipModel) -> dict:
    """The ONNX graphs' modules (models/onnx_engine.py): the image tower from the uint8 batch,
    the text tower from token ids; both end as encode_images / encode_texts do."""
    from .onnx_engine import embedding_module

    return {
        "image": embedding_module(model.model, lambda net, x: net.encode_image(x), model.spec),
        "text": embedding_module(model.model, lambda net, tokens: net.encode_text(tokens)),
    }


def tokenizer(model_dir: Path):
    """texts -> int64 token ids (n, context_length), as ClipModel.encode_texts tokenizes: the
    tokenizer stored with the model, without torch where it has a port (clip_tokenizer)."""
    return load_tokenizer(model_dir)


def stored_logit_scale(folder: Path) -> float:
    """exp(logit_scale) of the weights `folder` was made from (a loaded model's `model_dir`: the
    weights entry or the ONNX entry): the temperature of the zero-shot softmax (open_clip:
    `logit_scale.exp() * image @ text.T`). Read from LOGIT_SCALE_FILE, without torch or
    safetensors; a weights entry of an older import has none, and the weights tell it."""
    path = Path(folder) / LOGIT_SCALE_FILE
    if path.is_file():
        return float(json.loads(path.read_text())["logit_scale"])
    return _weights_logit_scale(str(Path(folder) / WEIGHTS_FILE))


@functools.cache
def _weights_logit_scale(weights_file: str) -> float:
    from safetensors import safe_open

    with safe_open(weights_file, framework="np") as weights:
        return float(np.exp(np.asarray(weights.get_tensor("logit_scale"), dtype=np.float64)).reshape(-1)[0])


def _normalized(features: "torch.Tensor") -> np.ndarray:
    import torch.nn.functional as F

    return F.normalize(features.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)
