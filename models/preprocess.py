"""Preprocessing, split where the data is smallest.

The gateway turns a decoded PIL image into a uint8 array at the model's input size
(`prepare_images`, PIL only, no torch), so what crosses to a runner is 150 KB per image
instead of a full-resolution bitmap. The runner turns that array into a normalized tensor
(`to_model_input`). Together they reproduce the reference pipelines bit for bit where the
reference resizes with PIL: open_clip's and timm's (torchvision's Resize + CenterCrop +
ToTensor + Normalize on a PIL image) and transformers' PIL image processors (PIL resize, then
a numpy center crop whose offsets round down: `ModelSpec.crop_rounding = "floor"`); tests
check that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .specs import ModelSpec

if TYPE_CHECKING:
    import torch

_PIL_INTERPOLATION = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def resize_shortest(img: Image.Image, size: int, interpolation: str) -> Image.Image:
    """Resize so the short side is `size`, keeping the aspect ratio (torchvision's rule)."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) == (w, h):
        return img
    return img.resize((new_w, new_h), _PIL_INTERPOLATION[interpolation])


def center_crop(img: Image.Image, size: int, rounding: str = "round") -> Image.Image:
    """Crop the central size x size square.

    `rounding` places odd margins: "round" is torchvision's `round((h - size) / 2)` (half to
    even), "floor" is transformers' numpy crop, `(h - size) // 2`.
    """
    w, h = img.size
    if w < size or h < size:
        raise ValueError(f"cannot center-crop {w}x{h} to {size}x{size}")
    if rounding == "floor":
        top, left = (h - size) // 2, (w - size) // 2
    elif rounding == "round":
        top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    else:
        raise ValueError(f"unsupported crop rounding {rounding!r}")
    return img.crop((left, top, left + size, top + size))


def letterbox_size(width: int, height: int, canvas: int) -> tuple[int, int]:
    """The size an image takes on a `canvas` x `canvas` letterbox: long side = canvas."""
    scale = canvas / max(width, height)
    return max(1, min(canvas, round(width * scale))), max(1, min(canvas, round(height * scale)))


def letterbox(img: Image.Image, canvas: int, interpolation: str) -> Image.Image:
    """Resize so the long side is `canvas` (aspect kept) and paste top-left on black.

    Detectors get one fixed shape whatever the image's, so requests batch together; boxes
    map back with the per-axis factors of `letterbox_size`.
    """
    size = letterbox_size(img.width, img.height, canvas)
    if size != img.size:
        img = img.resize(size, _PIL_INTERPOLATION[interpolation])
    if size == (canvas, canvas):
        return img
    board = Image.new("RGB", (canvas, canvas))
    board.paste(img, (0, 0))
    return board


def prepare_image(img: Image.Image, spec: ModelSpec) -> np.ndarray:
    """An RGB PIL image -> uint8 array (size, size, 3) as the model's transform sees it."""
    if img.mode != "RGB":
        img = img.convert("RGB")
    size = spec.input_size
    if spec.resize_mode == "letterbox":
        img = letterbox(img, size, spec.interpolation)
    elif spec.resize_mode == "squash":
        if img.size != (size, size):
            img = img.resize((size, size), _PIL_INTERPOLATION[spec.interpolation])
    else:
        resized = resize_shortest(img, spec.resize_size or size, spec.interpolation)
        img = center_crop(resized, size, spec.crop_rounding)
    return np.asarray(img, dtype=np.uint8)


def decoded_side(spec: ModelSpec) -> int:
    """The smallest width and height a decoded image may have without `prepare_image` losing
    detail: its resize target (the short side for center crops, both sides for squash, and
    conservatively both for letterbox, whose long side becomes the canvas)."""
    return spec.resize_size or spec.input_size


def prepare_images(images: Sequence[Image.Image], spec: ModelSpec) -> np.ndarray:
    """Many images -> one uint8 batch (n, size, size, 3), the runners' wire format."""
    size = spec.input_size
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        batch[i] = prepare_image(img, spec)
    return batch


def to_model_input(batch: np.ndarray, spec: ModelSpec, *, device: str, dtype: "torch.dtype") -> "torch.Tensor":
    """uint8 (n, h, w, 3) -> normalized float tensor (n, 3, h, w) on the model's device."""
    import torch

    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (n, h, w, 3) batch, got {batch.dtype} {batch.shape}")
    # Move uint8 to the device first (4x fewer bytes than float), normalize there in float32
    # exactly as torchvision's ToTensor + Normalize do, then cast to the model's dtype.
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    return normalize_pixels(x, spec).to(dtype)


def normalize_pixels(x: "torch.Tensor", spec: ModelSpec) -> "torch.Tensor":
    """uint8 tensor (n, h, w, 3) -> float32 (n, 3, h, w), scaled to [0, 1] and normalized with
    the spec's mean and std. The torch engine runs it; the ONNX graphs contain it (the same ops)."""
    import torch

    x = x.permute(0, 3, 1, 2).float().div(255)
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return x.sub(mean).div(std)
