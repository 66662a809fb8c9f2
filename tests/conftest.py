"""Shared test setup: tiny profile, a private BentoML home, test images made in memory.

The environment is set at import time, before any test module imports bentoml, so every
test and every server a test starts uses the tiny profile and a throwaway model store.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_HOME = tempfile.mkdtemp(prefix="image-embed-test-home-")
os.environ["BENTOML_HOME"] = _HOME
os.environ["IMAGE_EMBED_DATA_DIR"] = os.path.join(_HOME, "index-data")  # never the user's own indexes
os.environ["IMAGE_EMBED_PROFILE"] = "tiny"
os.environ["IMAGE_EMBED_DEVICE"] = "cpu"
os.environ.pop("IMAGE_EMBED_URL_ALLOWLIST", None)
# Servers and gateways under test fetch only from allow-listed loopback servers: a host name
# that a test (or the fuzzer) makes up is refused before any DNS lookup.
os.environ["IMAGE_EMBED_URL_POLICY"] = "allowlist"
# classify's classifiers: a directory of the session's own (tests write classifiers into it)
os.environ["IMAGE_EMBED_CLASSIFIERS_DIR"] = str(Path(_HOME) / "classifiers")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_addoption(parser):
    parser.addoption(
        "--ui-screenshots", metavar="DIR", default=None,
        help="the UI tests (tests/gateway/ui/) save their pages there as small PNGs, e.g. docs/img",
    )
    parser.addoption(
        "--containers", choices=("auto", "require"), default="auto",
        help="the container tests (marker `container`): auto skips them where docker cannot run "
        "(not root, no apt, no dockerd); require (CI, .ci/run) fails them instead",
    )


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    return Path(_HOME)


@pytest.fixture(scope="session")
def classifiers_dir(bentoml_home) -> Path:
    """The IMAGE_EMBED_CLASSIFIERS_DIR every server of the session reads."""
    path = Path(os.environ["IMAGE_EMBED_CLASSIFIERS_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def tiny_models(bentoml_home):
    """Every tiny-profile model imported into the test model store (once per session)."""
    from models import list_models
    from models.store import import_spec

    return {spec.key: import_spec(spec).tag for spec in list_models("tiny")}


def photo() -> Image.Image:
    """A real photograph (scikit-image ships it): 512x512 RGB, one face."""
    import skimage.data

    return Image.fromarray(skimage.data.astronaut())


def encode(img: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
