"""CLIP models by name: the entries of IMAGE_EMBED_EXTRA_CLIP, described for their specs.

    IMAGE_EMBED_EXTRA_CLIP=ViT-L-14/openai,rn=RN50x16/openai

An entry is an open_clip architecture and pretrained tag (`ARCH/TAG`, as
`open_clip.list_pretrained()` lists them), optionally named: `name=ARCH/TAG`. The name is the
model key (`rn`); without one the key is `clip_` + the entry in lower case with every run of
other characters as `_` (`clip_vit_l_14_openai`).

What open_clip decides about a model (input size, normalization, resize mode, embedding size,
context length; for the tiny profile, the tiny twin's shape) is read:

1. from the model store, when the model was imported (the spec is the entry's metadata): a
   server needs no open_clip configuration, and never imports torch into the gateway for it;
2. else from open_clip itself (importing it, and torch): what image-embed import-models does
   before it writes the model into the store.

Tiny twins keep the real model's input size, preprocessing, embedding size and context length,
with a small tower of the same kind: a 2-layer ViT of the same patch size for ViTs, a
ModifiedResNet with one block per stage for OpenAI's ResNets (RN50, RN50x16, ...). Towers
open_clip builds from timm or Hugging Face (SigLIP, EVA, ...) get a plain ViT twin.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from config.fields import EXTRA_CLIP_ENTRY
from config.settings import SettingsError


ENV = "IMAGE_EMBED_EXTRA_CLIP"
# The spec fields open_clip decides, read back from a stored entry's metadata.
RESOLVED_FIELDS = (
    "input_size", "mean", "std", "interpolation", "resize_mode", "output_dim", "context_length", "arch_config",
)
TINY_TEXT = {"vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}  # open_clip's own tokenizer's vocabulary


@dataclass(frozen=True)
class ClipEntry:
    key: str
    arch: str
    pretrained: str

    @property
    def name(self) -> str:
        return f"{self.arch}/{self.pretrained}"

    @property
    def seed(self) -> int:
        """The tiny and bench twins' seed: different entries get different random weights."""
        return int(hashlib.sha256(self.key.encode()).hexdigest(), 16) % 10_000


def default_key(arch: str, pretrained: str) -> str:
    return "clip_" + re.sub(r"[^a-z0-9]+", "_", f"{arch}/{pretrained}".lower()).strip("_")


def parse_entries(values: tuple[str, ...] | list[str]) -> list[ClipEntry]:
    """The entries of IMAGE_EMBED_EXTRA_CLIP (validated by config.settings), keys unique."""
    entries = []
    for value in values:
        match = EXTRA_CLIP_ENTRY.match(value)
        if match is None:
            raise SettingsError(f"{ENV}: {value!r} is not [name=]ARCH/TAG")
        arch, tag = match["arch"], match["tag"]
        entries.append(ClipEntry(key=match["key"] or default_key(arch, tag), arch=arch, pretrained=tag))
    keys = [e.key for e in entries]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise SettingsError(f"{ENV} names the model key(s) {', '.join(repeated)} twice")
    return entries


def describe(entry: ClipEntry, profile: str) -> dict[str, Any]:
    """The spec fields open_clip decides for `entry` in `profile` (module docstring)."""
    stored = stored_fields(entry, profile)
    if stored is not None:
        return stored
    try:
        import open_clip
    except ImportError:
        raise SettingsError(
            f"{ENV}: {entry.name} ({entry.key!r}) is not in the model store, and open_clip, which "
            f"describes it, is not installed: import it where open_clip is "
            f"(image-embed import-models --profile {profile}) and bring the model store along"
        ) from None
    return open_clip_fields(entry, profile, open_clip)


def stored_fields(entry: ClipEntry, profile: str) -> dict[str, Any] | None:
    """The fields of `entry`'s newest entry in the model store, or None when it is not there."""
    import bentoml

    found = []
    for stored in bentoml.models.list():
        info = stored.info
        meta = info.metadata or {}
        if info.labels.get("key") != entry.key or info.labels.get("profile") != profile:
            continue
        pretrained = entry.pretrained if profile == "default" else None
        if meta.get("arch") != entry.arch or meta.get("pretrained") != pretrained:
            continue
        found.append((info.creation_time, meta))
    if not found:
        return None
    meta = max(found, key=lambda item: item[0])[1]
    fields = {name: meta.get(name) for name in RESOLVED_FIELDS}
    fields["mean"], fields["std"] = tuple(fields["mean"]), tuple(fields["std"])
    return fields


def open_clip_fields(entry: ClipEntry, profile: str, open_clip: Any) -> dict[str, Any]:
    """The fields as open_clip's own configuration of the architecture and tag says."""
    cfg = open_clip.get_model_config(entry.arch)
    if cfg is None:
        raise SettingsError(f"{ENV}: open_clip has no architecture {entry.arch!r} (open_clip.list_models() lists them)")
    tag = open_clip.get_pretrained_cfg(entry.arch, entry.pretrained)
    if not tag:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(entry.arch)) or "none"
        raise SettingsError(
            f"{ENV}: open_clip has no pretrained tag {entry.pretrained!r} for {entry.arch} (it has: {known})"
        )
    size = cfg["vision_cfg"].get("image_size", 224)
    if isinstance(size, (list, tuple)):
        if len(set(size)) != 1:
            raise SettingsError(f"{ENV}: {entry.name} takes {size[0]}x{size[1]} images; only square inputs are served")
        size = size[0]
    context_length = int(cfg.get("text_cfg", {}).get("context_length", 77))
    twin = tiny_twin(cfg, int(size), context_length, bool(tag.get("quick_gelu"))) if profile == "tiny" else None
    return {
        "input_size": int(size),
        "mean": tuple(float(v) for v in tag["mean"]),
        "std": tuple(float(v) for v in tag["std"]),
        "interpolation": tag["interpolation"],
        "resize_mode": tag["resize_mode"],
        "output_dim": int(cfg["embed_dim"]),
        "context_length": context_length,
        "arch_config": twin,
    }


def tiny_twin(cfg: dict[str, Any], size: int, context_length: int, quick_gelu: bool) -> dict[str, Any]:
    """A tiny open_clip config of the same kind as `cfg` (module docstring)."""
    vision = cfg["vision_cfg"]
    if isinstance(vision.get("layers"), (list, tuple)):  # OpenAI's ModifiedResNet
        vision_cfg = {"image_size": size, "layers": [1, 1, 1, 1], "width": 16}
    else:
        patch = vision.get("patch_size") or 16
        vision_cfg = {"image_size": size, "layers": 2, "width": 64, "head_width": 32, "patch_size": patch}
    return {
        "embed_dim": int(cfg["embed_dim"]),
        "quick_gelu": quick_gelu,
        "vision_cfg": vision_cfg,
        "text_cfg": {"context_length": context_length, **TINY_TEXT},
    }
