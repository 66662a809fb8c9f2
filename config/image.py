"""The Bento's container image (service.py IMAGE): the full image, or the lean one.

    bentoml build --arg models=...                    full: every model, PyTorch (GPU hosts)
    bentoml build --arg models=clip --arg engine=onnx lean: ONNX Runtime on the CPU, no PyTorch

- full: requirements.txt (which includes requirements-lean.txt), then the packages whose own
  pins conflict with ours without their dependencies (requirements-nodeps.txt, `uv pip
  install --no-deps`: facenet-pytorch). PyTorch from PyPI brings its CUDA libraries.
- lean: requirements-lean.txt alone: BentoML, ONNX Runtime, the gateway, search (FAISS,
  psycopg) and CLIP's stored text tokenizer (regex, ftfy). No torch, torchvision, open_clip,
  transformers, timm or facenet-pytorch: the graphs were exported at import time, on the
  build machine. Nor the C compiler BentoML installs by default: every package is a wheel.

Both start FROM python:3.11-slim (BentoML's Debian image for Python 3.11) and have /data,
owned by the server's user, for the data volume. BentoML copies requirement lines into the
Bento as they are, so `-r` includes are expanded here.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = "3.11"
FULL_REQUIREMENTS = "requirements.txt"
LEAN_REQUIREMENTS = "requirements-lean.txt"
NO_DEPS_REQUIREMENTS = "requirements-nodeps.txt"
DATA_MOUNT = "/data"  # IMAGE_EMBED_DATA_DIR=/data with a volume there keeps SQLite indexes
BENTO_USER = "bentoml"  # the user BentoML's Dockerfile creates and runs the server as


def requirement_lines(name: str, root: Path = ROOT) -> list[str]:
    """The requirements of file `name` (in `root`), `-r` includes expanded, comments and blank
    lines left out."""
    lines: list[str] = []
    for raw in (root / name).read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            lines += requirement_lines(line.split(maxsplit=1)[1], root)
        else:
            lines.append(line)
    return lines


def _image_class(lean: bool):
    import bentoml

    if not lean:
        return bentoml.images.Image
    from bentoml._internal.container.frontend.dockerfile import CONTAINER_METADATA

    class WithoutBuildTools(bentoml.images.Image):
        """BentoML starts a Debian image with `apt-get install build-essential git ...` (about
        700 MB) for packages built from source; every package of the lean image is a wheel.
        attrs runs this hook again when `bentoml build` copies the image (attrs.evolve)."""

        def __attrs_post_init__(self) -> None:
            super().__attrs_post_init__()
            default = CONTAINER_METADATA.get(self.distro, {}).get("default_install_command")
            self.commands[:] = [command for command in self.commands if command != default]

    return WithoutBuildTools


def bento_image(lean: bool):
    """The image of the Bento: lean (no PyTorch) or full (module docstring)."""
    image = _image_class(lean)(python_version=PYTHON_VERSION, lock_python_packages=False)
    if lean:
        image = image.python_packages(*requirement_lines(LEAN_REQUIREMENTS))
    else:
        # the command runs before the bundle's files are copied in, so it names the packages itself
        no_deps = " ".join(requirement_lines(NO_DEPS_REQUIREMENTS))
        image = image.python_packages(*requirement_lines(FULL_REQUIREMENTS)).run(f"uv pip install --no-deps {no_deps}")
    # the mount point of the data volume, owned by the user the server runs as (docs/deploy.md)
    return image.run(f"mkdir -p {DATA_MOUNT} && chown {BENTO_USER}:{BENTO_USER} {DATA_MOUNT}")
