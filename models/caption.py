"""The transformers BLIP family: image captioning with batched greedy generation.

A stored captioner is a transformers folder written by `save_pretrained`: the model
(`config.json`, `model.safetensors`, `generation_config.json`) and its `BlipProcessor`
(tokenizer and image-processor files), so transformers itself loads exactly what the server
serves (`from_pretrained(<store folder>)`), which the parity tests do.

Default profile: Salesforce/blip-image-captioning-base from the Hugging Face hub. Tiny:
the same classes with a tiny config and a tiny word list written as the tokenizer's vocab
(built offline: `BertTokenizer(vocab={...})`, then saved; transformers 5 ignores a
`vocab_file=` argument). Bench: BLIP-base's architecture (BlipConfig's defaults) with a
synthetic vocab of the real size.

`max_length` is per request and counts the tokens `generate` returns, BOS included
(transformers' meaning). A batch mixing lengths is generated once to the largest and each
caption is cut to its own length: greedy decoding is causal, so the first L tokens of a
longer run are exactly what a run with max_length=L yields.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .device import DeviceChoice
from .hub import WeightsDownloadError, ensure_hub_reachable
from .preprocess import to_model_input
from .specs import ModelSpec

MAX_CAPTION_LENGTH = 128  # tokens, BOS included: the most a request may ask for
# BERT's special tokens, at BERT's ids in the synthetic vocab (bench) and first in the tiny one
SPECIAL = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
BOS = "[DEC]"  # BLIP's decoder start token


def tiny_vocab(words: list[str]) -> dict[str, int]:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, BOS]
    return {t: i for i, t in enumerate(tokens)}


def synthetic_vocab(size: int, bos_id: int) -> dict[str, int]:
    """A vocab of `size` entries with BERT's specials and BLIP's BOS where the real one has them."""
    vocab = {f"w{i}": i for i in range(size)}
    for token, i in {**SPECIAL, BOS: bos_id}.items():
        del vocab[f"w{i}"]
        vocab[token] = i
    return vocab


def _random_model_and_processor(spec: ModelSpec):
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    cfg = dict(spec.arch_config or {})
    words = cfg.pop("vocab_words", None)
    if words is not None:
        vocab = tiny_vocab(words)
        text = {
            **cfg.get("text_config", {}),
            "vocab_size": len(vocab),
            "bos_token_id": vocab[BOS],
            "sep_token_id": vocab["[SEP]"],
            "eos_token_id": vocab["[SEP]"],
            "pad_token_id": vocab["[PAD]"],
        }
        config = BlipConfig(text_config=text, vision_config=cfg.get("vision_config", {}))
    else:
        config = BlipConfig(**cfg)
        vocab = synthetic_vocab(config.text_config.vocab_size, config.text_config.bos_token_id)
    if config.vision_config.image_size != spec.input_size:
        raise ValueError(f"{spec.key}: vision image_size {config.vision_config.image_size} != input_size {spec.input_size}")
    torch.manual_seed(spec.seed)
    model = BlipForConditionalGeneration(config)
    tokenizer = BertTokenizer(vocab=vocab, bos_token=BOS)
    image_processor = BlipImageProcessor(
        size={"height": spec.input_size, "width": spec.input_size}, image_mean=list(spec.mean), image_std=list(spec.std)
    )
    return model, BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def materialize(spec: ModelSpec, target: Path) -> None:
    """Write model and processor of `spec` into `target` (a new model-store folder)."""
    if spec.random_weights:
        model, processor = _random_model_and_processor(spec)
    else:
        from transformers import BlipForConditionalGeneration, BlipProcessor

        ensure_hub_reachable(spec.weights_source)
        try:
            model = BlipForConditionalGeneration.from_pretrained(spec.pretrained)
            processor = BlipProcessor.from_pretrained(spec.pretrained)
        except OSError as exc:  # transformers wraps hub/network errors in OSError
            raise WeightsDownloadError(f"could not download {spec.weights_source}: {exc}") from exc
        _check_preprocess_matches(spec, processor)
    model.save_pretrained(target)
    processor.save_pretrained(target)
    (target / "image_embed_spec.json").write_text(json.dumps(spec.to_metadata(), indent=2))


def _check_preprocess_matches(spec: ModelSpec, processor) -> None:
    ip = processor.image_processor
    expected = ({"height": spec.input_size, "width": spec.input_size}, list(spec.mean), list(spec.std))
    actual = (dict(ip.size), [round(v, 8) for v in ip.image_mean], [round(v, 8) for v in ip.image_std])
    if actual != expected:
        raise ValueError(f"spec preprocessing {expected} differs from the checkpoint's {actual}")


class Captioner:
    """BLIP on the gateway's uint8 batches (n, size, size, 3) -> one caption per image."""

    def __init__(self, spec: ModelSpec, model_dir: Path, device: DeviceChoice) -> None:
        import torch
        from transformers import AutoTokenizer, BlipForConditionalGeneration

        self.spec = spec
        self.device = device
        self.dtype = torch.float16 if device.dtype == "float16" else torch.float32
        self.model = BlipForConditionalGeneration.from_pretrained(model_dir, dtype=self.dtype).to(device.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def generate(self, batch: np.ndarray, max_length: int) -> np.ndarray:
        """Greedy token ids (n, <= max_length), BOS first, padded after each caption's end."""
        import torch

        with torch.inference_mode():
            x = to_model_input(batch, self.spec, device=self.device.device, dtype=self.dtype)
            return self.model.generate(pixel_values=x, max_length=max_length).cpu().numpy()

    def caption(self, batch: np.ndarray, max_lengths: list[int]) -> list[str]:
        if len(batch) != len(max_lengths):
            raise ValueError(f"{len(batch)} images but {len(max_lengths)} max_lengths")
        if not len(batch):
            return []
        tokens = self.generate(batch, max(max_lengths))
        return [self.tokenizer.decode(row[:n], skip_special_tokens=True).strip() for row, n in zip(tokens, max_lengths)]
