"""The timm family (InternViT-300M): materialize weights into a model-store folder, load, encode.

A stored model is `config.json` (the timm architecture, its keyword arguments and the pretrained
config: input size, mean/std, interpolation, crop) beside `model.safetensors`. timm itself loads
it: `timm.create_model(architecture, pretrained=True, pretrained_cfg_overlay={"file": <path>},
**model_args)`, which is what the parity tests do.

Embedding ("simple extractor"): `forward_features` (the token sequence after the last block and
the model's final norm, which InternViT-300M does not have: `final_norm=False`), the patch
tokens only (the `num_prefix_tokens` = 1 CLS token dropped), averaged, L2-normalized.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .device import DeviceChoice
from .hub import WeightsDownloadError, ensure_hub_reachable
from .preprocess import to_model_input
from .specs import ModelSpec

if TYPE_CHECKING:
    import torch

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_CFG_KEYS = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")


def expected_data_config(spec: ModelSpec) -> dict[str, Any]:
    """timm's data config (resolve_data_config) that `spec`'s preprocessing reproduces."""
    if spec.resize_mode != "shortest" or spec.resize_size not in (None, spec.input_size):
        raise ValueError(f"{spec.key}: timm's center-crop transform needs resize_mode 'shortest' at the input size")
    return {
        "input_size": [3, spec.input_size, spec.input_size],
        "interpolation": spec.interpolation,
        "crop_pct": 1.0,
        "crop_mode": "center",
        "mean": list(spec.mean),
        "std": list(spec.std),
    }


def _data_config(pretrained_cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = {k: pretrained_cfg.get(k) for k in _CFG_KEYS}
    for k in ("input_size", "mean", "std"):
        cfg[k] = [round(float(v), 8) if k != "input_size" else int(v) for v in cfg[k]]
    return cfg


def materialize(spec: ModelSpec, target: Path) -> None:
    """Write config and weights of `spec` into `target` (a new model-store folder)."""
    import timm
    import torch
    from safetensors.torch import save_file

    model_args = dict(spec.arch_config or {})
    if spec.random_weights:
        torch.manual_seed(spec.seed)
        model = timm.create_model(spec.arch, pretrained=False, **model_args)
    else:
        ensure_hub_reachable(spec.weights_source)
        try:
            model = timm.create_model(f"{spec.arch}.{spec.pretrained}", pretrained=True, **model_args)
        except Exception as exc:  # timm surfaces hub and network failures as many types
            raise WeightsDownloadError(f"could not download {spec.weights_source}: {exc}") from exc
    pretrained_cfg = {k: v for k, v in model.pretrained_cfg.items() if isinstance(v, (str, int, float, bool, list, tuple))}
    if spec.random_weights:  # keep the data config, drop what names the hub's weights
        pretrained_cfg = {k: v for k, v in pretrained_cfg.items() if k not in ("url", "hf_hub_id", "tag", "license")}
    if _data_config(pretrained_cfg) != _data_config(expected_data_config(spec)):
        raise ValueError(
            f"spec preprocessing {expected_data_config(spec)} differs from timm's "
            f"{_data_config(pretrained_cfg)} for {spec.arch}"
        )
    config = {"architecture": spec.arch, "model_args": model_args, "pretrained_cfg": pretrained_cfg}
    (target / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(target / WEIGHTS_FILE))


def load_timm_model(model_dir: Path) -> "torch.nn.Module":
    """The stored model, built by timm from its config and loaded from safetensors (strict)."""
    import timm
    from safetensors.torch import load_file

    config = json.loads((model_dir / CONFIG_FILE).read_text())
    model = timm.create_model(config["architecture"], pretrained=False, **config["model_args"])
    model.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)), strict=True)
    return model.eval()


def mean_patch_tokens(model, x: "torch.Tensor") -> "torch.Tensor":
    """forward_features, then the mean of the patch tokens (prefix/CLS tokens excluded)."""
    tokens = model.forward_features(x)
    return tokens[:, model.num_prefix_tokens :].mean(dim=1)


class InternVitModel:
    """A loaded InternViT. Inputs are uint8 batches (n, 448, 448, 3) of whole images or views;
    outputs float32 (n, embed_dim): mean-pooled patch tokens, L2-normalized."""

    def __init__(self, spec: ModelSpec, model_dir: Path, device: DeviceChoice) -> None:
        import torch

        self.spec = spec
        self.device = device
        self.dtype = torch.float16 if device.dtype == "float16" else torch.float32
        self.model = load_timm_model(model_dir).to(device=device.device, dtype=self.dtype)

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            x = to_model_input(batch, self.spec, device=self.device.device, dtype=self.dtype)
            pooled = mean_patch_tokens(self.model, x)
            return F.normalize(pooled.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)


def graph_modules(model: InternVitModel) -> dict:
    """The ONNX graph's module (models/onnx_engine.py): uint8 batch -> mean patch token, L2-normalized."""
    from .onnx_engine import embedding_module

    return {"image": embedding_module(model.model, mean_patch_tokens, model.spec)}
