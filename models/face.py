"""The facenet-pytorch family: MTCNN face detection with its real weights in every profile.

facenet-pytorch ships MTCNN's P-, R- and O-net weights inside its wheel, so no profile needs
a download and the tiny profile detects real faces. They still go through the model store
like every other model: `materialize` copies the package's weights into the store as
`model.safetensors` (with the detection settings in `config.json`), the runner loads them
from there, and `bentoml build` packs them into the Bento.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .detection import MAX_DETECTIONS, pack
from .device import DeviceChoice
from .specs import ModelSpec

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# MTCNN's own defaults: faces down to 20 px (on the letterbox canvas), stage thresholds, pyramid factor
DEFAULT_SETTINGS = {"min_face_size": 20, "thresholds": [0.6, 0.7, 0.7], "factor": 0.709}


def _settings(spec: ModelSpec) -> dict:
    return {**DEFAULT_SETTINGS, **(spec.arch_config or {})}


def materialize(spec: ModelSpec, target: Path) -> None:
    """Copy the weights bundled with facenet-pytorch into `target` as safetensors."""
    from importlib.metadata import version

    from facenet_pytorch import MTCNN
    from safetensors.torch import save_file

    if not spec.weights_bundled:
        raise ValueError(f"{spec.key}: MTCNN's weights come from the facenet-pytorch package; set weights_bundled")
    mtcnn = MTCNN(device="cpu")  # loads pnet.pt, rnet.pt, onet.pt from the package (weights_only)
    config = {"settings": _settings(spec), "facenet_pytorch_version": version("facenet-pytorch")}
    (target / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    state = {k: v.detach().contiguous().clone() for k, v in mtcnn.state_dict().items()}
    save_file(state, str(target / WEIGHTS_FILE))


class FaceDetector:
    """MTCNN on letterboxed uint8 batches -> faces in the MAX_DETECTIONS wire form
    (`[xmin, ymin, xmax, ymax, probability]`, canvas pixels). Runs in float32 on every device
    (the nets are small; their thresholds were tuned in float32)."""

    def __init__(self, spec: ModelSpec, model_dir: Path, device: DeviceChoice) -> None:
        from facenet_pytorch import MTCNN
        from safetensors.torch import load_file

        config = json.loads((model_dir / CONFIG_FILE).read_text())
        self.settings = config["settings"]
        self.spec = spec
        self.device = device
        self.mtcnn = MTCNN(device=device.device, keep_all=True, **self.settings)
        self.mtcnn.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)))
        self.mtcnn.eval()

    def detect(self, batch: np.ndarray) -> np.ndarray:
        import torch
        from facenet_pytorch.models.utils.detect_face import detect_face

        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"expected a uint8 (n, h, w, 3) batch, got {batch.dtype} {batch.shape}")
        m = self.mtcnn
        with torch.inference_mode():
            # MTCNN.detect's own first step, called directly: it returns per-image float
            # arrays (MTCNN.detect wraps them in object arrays, awkward under numpy 2).
            found, _ = detect_face(
                batch, m.min_face_size, m.pnet, m.rnet, m.onet, m.thresholds, m.factor, m.device
            )
        rows = []
        for faces in found:
            faces = np.asarray(faces, dtype=np.float32).reshape(-1, 5)
            rows.append(pack(faces[:, :4], faces[:, 4], MAX_DETECTIONS))
        return np.stack(rows) if rows else np.zeros((0, MAX_DETECTIONS, 5), dtype=np.float32)
