"""open_clip's own pipeline on a model-store folder: the reference of the CLIP parity tests.

open_clip loads the stored folder itself (`local-dir:`), with its own transform and tokenizer,
so a test compares what the server computes with what open_clip computes on the same weights.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


class OpenClipReference:
    def __init__(self, folder: Path) -> None:
        import open_clip

        self.model, _, self.preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")

    def images(self, images: list[Image.Image | bytes]) -> np.ndarray:
        """L2-normalized image vectors (n, d), after open_clip's own transform."""
        import torch

        pils = [Image.open(io.BytesIO(i)).convert("RGB") if isinstance(i, bytes) else i for i in images]
        with torch.no_grad():
            features = self.model.encode_image(torch.stack([self.preprocess(img) for img in pils]))
        return torch.nn.functional.normalize(features, dim=-1).numpy()

    def texts(self, texts: list[str]) -> np.ndarray:
        """L2-normalized text vectors (n, d), after open_clip's own tokenizer."""
        import torch

        with torch.no_grad():
            features = self.model.encode_text(self.tokenizer(list(texts)))
        return torch.nn.functional.normalize(features, dim=-1).numpy()

    def zero_shot(self, image: Image.Image | bytes, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """open_clip's zero-shot recipe: (cosine scores, softmax of logit_scale.exp() x scores)."""
        import torch

        image_features = torch.from_numpy(self.images([image]))
        text_features = torch.from_numpy(self.texts(texts))
        with torch.no_grad():
            scores = image_features @ text_features.T
            probs = (self.model.logit_scale.exp() * scores).softmax(dim=-1)
        return scores[0].numpy(), probs[0].numpy()
