"""bench/internvit.py on the tiny profile: the result's shape, and loopback-only --url.
The served measurement (--url) is tested in tests/integration/test_internvit.py."""

from __future__ import annotations

import importlib

import pytest


@pytest.fixture(scope="module")
def bench():
    module = importlib.import_module("bench.internvit")
    return module


@pytest.fixture()
def tiny_env(monkeypatch, tiny_models):
    monkeypatch.setenv("IMAGE_EMBED_PROFILE", "tiny")  # run() sets it; monkeypatch restores it
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", "cpu")


def test_in_process_run(bench, tiny_env):
    result = bench.run(bench.parse_args(["--profile", "tiny", "--images", "2", "--batch-size", "4"]))
    assert result["profile"] == "tiny" and result["device"] == "cpu"
    simple, levels = result["in_process"]["simple"], result["in_process"]["three_level"]
    assert (simple["images"], simple["views"]) == (2, 2)
    assert (levels["images"], levels["views"], levels["batch_size"]) == (2, 12, 4)
    for entry in (simple, levels):
        assert entry["images_per_s"] > 0 and entry["forward_s"] > 0
    assert "served" not in result


@pytest.mark.parametrize("url", ["http://10.0.0.1:3000", "https://example.com"])
def test_url_must_be_loopback(bench, url):
    with pytest.raises(SystemExit):
        bench.parse_args(["--url", url])

