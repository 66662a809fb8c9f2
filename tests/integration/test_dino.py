"""The DINO runner inside the served bundle: loaded, reported by /health."""

from __future__ import annotations

import pytest

from models import get_spec

pytestmark = pytest.mark.integration


def test_health_reports_both_dino_models(http):
    body = http.get("/health").json()
    dino = body["models"]["dino"]
    for key in ("dinov2", "dinov3"):
        assert dino["models"][key]["store_tag"] == get_spec(key).store_tag
        assert dino["models"][key]["embedding_size"] == get_spec(key).output_dim
    assert body["status"] == "healthy"
