"""The torchvision detection family: Faster R-CNN person detection.

A stored detector is `config.json` (the spec's architecture and config) beside
`model.safetensors` (the state dict). Default profile: torchvision's own
`fasterrcnn_resnet50_fpn_v2` with the COCO_V1 weights (downloaded once from
download.pytorch.org by image-embed import-models). Tiny profile: the same torchvision classes
(FasterRCNN, AnchorGenerator, MultiScaleRoIAlign, TwoMLPHead, FastRCNNPredictor) around a
three-layer CNN backbone, seeded random weights; its classifier bias favours "person" so the
plumbing of found persons is exercised (the boxes themselves are meaningless).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .detection import MAX_DETECTIONS, pack
from .device import DeviceChoice
from .hub import WeightsDownloadError, ensure_url_reachable
from .specs import ModelSpec

if TYPE_CHECKING:
    import torch

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
COCO_PERSON = 1  # COCO category id of "person" in torchvision's detection models
NUM_CLASSES = 91  # COCO's, background included
TORCHVISION_DOWNLOADS = "https://download.pytorch.org"


def _weights_enum(arch: str):
    from torchvision.models import get_model_weights

    return get_model_weights(arch)


def build(arch: str, arch_config: dict[str, Any] | None) -> "torch.nn.Module":
    """The detector's module, weights uninitialized (random)."""
    if arch_config is None:
        from torchvision.models import get_model

        return get_model(arch, weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    return _tiny_faster_rcnn(arch_config)


def _tiny_faster_rcnn(cfg: dict[str, Any]) -> "torch.nn.Module":
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    layers: list[nn.Module] = []
    in_channels = 3
    for channels in cfg["backbone_channels"]:
        layers += [nn.Conv2d(in_channels, channels, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        in_channels = channels
    backbone = nn.Sequential(*layers)
    backbone.out_channels = in_channels
    sizes = tuple(cfg["anchor_sizes"])
    anchors = AnchorGenerator(sizes=(sizes,), aspect_ratios=((0.5, 1.0, 2.0),))
    pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    hidden = cfg["representation_size"]
    return FasterRCNN(
        backbone,
        num_classes=None,
        min_size=cfg["min_size"],
        max_size=cfg["max_size"],
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_test=cfg["proposals"],
        rpn_post_nms_top_n_test=cfg["proposals"],
        box_roi_pool=pool,
        box_head=TwoMLPHead(in_channels * 7 * 7, hidden),
        box_predictor=FastRCNNPredictor(hidden, NUM_CLASSES),
    )


def materialize(spec: ModelSpec, target: Path) -> None:
    """Write config and weights of `spec` into `target` (a new model-store folder)."""
    import torch
    from safetensors.torch import save_file

    if spec.random_weights:
        torch.manual_seed(spec.seed)
        model = build(spec.arch, spec.arch_config)
        bias = (spec.arch_config or {}).get("person_bias")
        if bias:
            with torch.no_grad():
                model.roi_heads.box_predictor.cls_score.bias[COCO_PERSON] += bias
    else:
        weights = _weights_enum(spec.arch)[spec.pretrained]
        ensure_url_reachable(TORCHVISION_DOWNLOADS, spec.weights_source)
        model = build(spec.arch, None)
        try:
            state = weights.get_state_dict(progress=False, check_hash=True)
        except Exception as exc:  # urllib / hash errors
            raise WeightsDownloadError(f"could not download {spec.weights_source}: {exc}") from exc
        model.load_state_dict(state)
    config = {"arch": spec.arch, "arch_config": spec.arch_config, "pretrained": spec.pretrained}
    (target / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(target / WEIGHTS_FILE))


def load(model_dir: Path) -> "torch.nn.Module":
    from safetensors.torch import load_file

    config = json.loads((model_dir / CONFIG_FILE).read_text())
    model = build(config["arch"], config["arch_config"])
    model.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)))
    return model.eval()


class PersonDetector:
    """Faster R-CNN on letterboxed uint8 batches -> person boxes in the MAX_DETECTIONS wire form.

    torchvision's model normalizes and resizes internally (GeneralizedRCNNTransform: ImageNet
    mean/std, short side 800 for the real model), so the runner only scales to [0, 1].
    Detection stays in float32 on every device: its box decoding and NMS want it.
    """

    def __init__(self, spec: ModelSpec, model_dir: Path, device: DeviceChoice) -> None:
        self.spec = spec
        self.device = device
        self.model = load(model_dir).to(device.device)

    def detect(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected a uint8 (n, h, w, 3) batch, got {batch.dtype} {batch.shape}")
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device.device)
            images = list(x.permute(0, 3, 1, 2).float().div(255))
            outputs = self.model(images)
        rows = []
        for out in outputs:
            person = out["labels"] == COCO_PERSON
            rows.append(pack(out["boxes"][person].cpu().numpy(), out["scores"][person].cpu().numpy(), MAX_DETECTIONS))
        return np.stack(rows) if rows else np.zeros((0, MAX_DETECTIONS, 5), dtype=np.float32)
