"""The DINO family (DINOv2, DINOv3 through transformers): materialize, load, encode.

A stored DINO model is a folder that transformers itself loads: `save_pretrained` output of the
model (config.json + model.safetensors) beside the image processor's preprocessor_config.json.
The parity tests load exactly what the server loads, with `from_pretrained(model_dir)`.

Embedding: `pooler_output`, which for both `Dinov2Model` and `DINOv3ViTModel` is the CLS token
of the last hidden state after the final layer norm; then L2-normalized, float32.
"""

from __future__ import annotations

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
PROCESSOR_FILE = "preprocessor_config.json"

# model generation (the arch's prefix: "dinov2-giant" -> "dinov2") -> the transformers
# image-processor class its checkpoints ship with
PROCESSOR_CLASSES = {"dinov2": "BitImageProcessor", "dinov3": "DINOv3ViTImageProcessor"}
_RESAMPLE = {"bilinear": 2, "bicubic": 3}  # PIL.Image.Resampling values, as processors store them


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def processor_kwargs(spec: ModelSpec) -> dict[str, Any]:
    """The image-processor settings that reproduce `spec`'s preprocessing."""
    common = {
        "resample": _RESAMPLE[spec.interpolation],
        "image_mean": list(spec.mean),
        "image_std": list(spec.std),
        "do_resize": True,
        "do_rescale": True,
        "do_normalize": True,
    }
    if spec.resize_mode == "shortest":
        return {
            **common,
            "size": {"shortest_edge": spec.resize_size or spec.input_size},
            "crop_size": {"height": spec.input_size, "width": spec.input_size},
            "do_center_crop": True,
        }
    return {**common, "size": {"height": spec.input_size, "width": spec.input_size}, "do_center_crop": False}


def make_processor(spec: ModelSpec):
    import transformers

    return getattr(transformers, PROCESSOR_CLASSES[spec.arch.split("-")[0]])(**processor_kwargs(spec))


def _signature(processor) -> dict[str, Any]:
    """The settings of a processor that decide its pixels, in a comparable form."""
    data = processor.to_dict()
    keys = ("resample", "image_mean", "image_std", "size", "do_resize", "do_rescale", "do_normalize")
    sig = {k: data.get(k) for k in keys}
    sig["image_mean"] = [round(float(v), 6) for v in sig["image_mean"]]
    sig["image_std"] = [round(float(v), 6) for v in sig["image_std"]]
    sig["size"] = {k: v for k, v in dict(sig["size"]).items() if v is not None}
    sig["do_center_crop"] = bool(data.get("do_center_crop"))
    if sig["do_center_crop"]:
        sig["crop_size"] = {k: v for k, v in dict(data["crop_size"]).items() if v is not None}
    return sig


def materialize(spec: ModelSpec, target: Path) -> None:
    """Write the model (config + safetensors) and its image processor config into `target`."""
    import torch
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    _quiet_transformers()
    processor = make_processor(spec)
    if spec.random_weights:
        if not spec.arch_config:
            raise ValueError(f"{spec.key} ({spec.profile}): random weights need an arch_config")
        config = AutoConfig.for_model(**spec.arch_config)
        torch.manual_seed(spec.seed)
        model = AutoModel.from_config(config)
    else:
        ensure_hub_reachable(spec.weights_source)
        try:
            model = AutoModel.from_pretrained(spec.pretrained, use_safetensors=True)
            hub_processor = AutoImageProcessor.from_pretrained(spec.pretrained)
        except OSError as exc:  # transformers reports hub, network and gating errors as OSError
            raise WeightsDownloadError(f"could not download {spec.weights_source}: {exc}") from exc
        if _signature(hub_processor) != _signature(processor):
            raise ValueError(
                f"spec preprocessing {_signature(processor)} differs from {spec.pretrained}'s "
                f"image processor {_signature(hub_processor)}"
            )
    model.save_pretrained(str(target), safe_serialization=True)
    processor.save_pretrained(str(target))


class DinoModel:
    """A loaded DINO model. Inputs are the gateway's uint8 batches (n, size, size, 3); outputs
    float32 (n, hidden_size), the CLS token after the final layer norm, L2-normalized."""

    def __init__(self, spec: ModelSpec, model_dir: Path, device: DeviceChoice) -> None:
        import torch
        from transformers import AutoModel

        _quiet_transformers()
        self.spec = spec
        self.device = device
        self.dtype = torch.float16 if device.dtype == "float16" else torch.float32
        model = AutoModel.from_pretrained(str(model_dir), dtype=self.dtype, use_safetensors=True)
        self.model = model.to(device.device).eval()

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = to_model_input(batch, self.spec, device=self.device.device, dtype=self.dtype)
            return _normalized(self.model(pixel_values=x).pooler_output)


def graph_modules(model: DinoModel) -> dict:
    """The ONNX graph's module (models/onnx_engine.py): uint8 batch -> pooler_output, L2-normalized."""
    from .onnx_engine import embedding_module

    return {"image": embedding_module(model.model, lambda net, x: net(pixel_values=x).pooler_output, model.spec)}


def _normalized(features: "torch.Tensor") -> np.ndarray:
    import torch.nn.functional as F

    return F.normalize(features.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)
