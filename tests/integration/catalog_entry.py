"""A model added the way docs/development.md says, by its catalog file alone, and CLIPs by name.

`source_tree_with(files)` copies this source tree (the files git knows, committed or not) into
a temporary folder and writes the given files there: here one more catalog file,
models/catalog/dinov2_small_test.py, a DINOv2 of its own size on a runner of its own.
Nothing else differs: no gateway, runner or configuration edit. `serve_named_models` imports
that tree's models with image-embed import-models, as an operator would, and serves them with
`bentoml serve` from there, with two CLIPs by name (IMAGE_EMBED_EXTRA_CLIP) beside `clip`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import ROOT
from tests.integration.conftest import Server, start_server

EXTRA_CLIP = "ViT-L-14/openai,RN50x16/openai"
VIT_L, RN = "clip_vit_l_14_openai", "clip_rn50x16_openai"
TEST_MODEL = "dinov2_small_test"
MODELS = ("clip", "dinov2", VIT_L, RN, TEST_MODEL)
DIMS = {"clip": 512, VIT_L: 768, RN: 768, "dinov2": 32, TEST_MODEL: 24}

# What a developer writes for a new model of an existing family (dino) on a new runner.
CATALOG_FILE = '''"""DINOv2 ViT-S/14 on a runner of its own (a test-only model)."""

from ..registry import register
from ..specs import IMAGENET_MEAN, IMAGENET_STD, BatchLimits, ModelSpec
from .dinov2 import TINY_CONFIG

COMMON = dict(
    key="dinov2_small_test",
    runner="dinov2_small_test",
    family="dino",
    display_name="DINOv2 ViT-S/14 (test)",
    input_size=224,
    resize_size=256,
    crop_rounding="floor",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    analyze_task="embed_dinov2_small_test",
    analyze_description="Generates an embedding using the test-only DINOv2 ViT-S/14.",
    batching={
        "encode_images": {
            "cpu": BatchLimits(max_batch_size=8, max_latency_ms=30_000, max_batch_wait_ms=5),
            "cuda": BatchLimits(max_batch_size=64, max_latency_ms=500, max_batch_wait_ms=20),
        }
    },
)
SMALL = {**TINY_CONFIG, "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "initializer_range": 0.02}
register(ModelSpec(profile="default", arch="dinov2-small", pretrained="facebook/dinov2-small",
                   weights_source="Hugging Face hub: facebook/dinov2-small", output_dim=384, **COMMON))
register(ModelSpec(profile="bench", arch="dinov2-small", arch_config=SMALL, output_dim=384, **COMMON))
register(ModelSpec(profile="tiny", arch="dinov2-tiny", arch_config={**TINY_CONFIG, "hidden_size": 24},
                   seed=5, output_dim=24, **COMMON))
'''


def source_tree_with(files: dict[str, str]) -> Path:
    """A copy of this source tree plus `files` (relative path -> text)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    tree = Path(tempfile.mkdtemp(prefix="image-embed-tree-"))
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, tree / rel)
    for rel, text in files.items():
        (tree / rel).write_text(text)
    return tree


def serve_named_models(images) -> Server:
    """Import and serve MODELS from a tree with the test-only catalog file; URLs of `images`
    (a tests/localhttp.py server) are admitted."""
    tree = source_tree_with({f"models/catalog/{TEST_MODEL}.py": CATALOG_FILE})
    env = {**os.environ, "IMAGE_EMBED_PROFILE": "tiny", "IMAGE_EMBED_EXTRA_CLIP": EXTRA_CLIP}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "import-models", "--profile", "tiny", "--models", ",".join(MODELS)],
        cwd=tree, env=env, capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import_models.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return start_server(
        args=("--arg", "models=" + ",".join(MODELS)),
        cwd=tree,
        IMAGE_EMBED_EXTRA_CLIP=EXTRA_CLIP,
        IMAGE_EMBED_URL_ALLOWLIST=f"127.0.0.1:{images.port}",
    )


def extra_clip_spec(key: str):
    """The spec of one of EXTRA_CLIP's models in this (test) process, as the server has it."""
    from models.catalog.extra_clip import spec_of
    from models.open_clip_names import parse_entries

    return next(spec_of(e, "tiny") for e in parse_entries(EXTRA_CLIP.split(",")) if e.key == key)
