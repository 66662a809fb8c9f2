"""bench/startup.py: the workers of a process tree, and one real tiny run of one choice."""

from __future__ import annotations

import importlib
import json

import pytest


@pytest.fixture(scope="module")
def script():
    module = importlib.import_module("bench.startup")
    return module


class FakeProcess:
    def __init__(self, cmd, rss):
        self.cmd, self.rss = cmd, rss

    def cmdline(self):
        return self.cmd


def test_workers_of_a_process_tree(script):
    procs = [
        FakeProcess(["python", "-m", "bentoml", "serve", "."], 2**20),
        FakeProcess(["python", "-m", "_bentoml_impl.worker.service", ".", "--service-name", "clip_runner"], 2**21),
        FakeProcess(["python", "-m", "_bentoml_impl.worker.service", "--service-name", "image_embed"], 2**20),
    ]
    assert script.workers(procs) == ["clip_runner", "image_embed"]


@pytest.mark.integration
def test_a_tiny_clip_only_start_is_measured(script, tiny_models, tmp_path):
    out = tmp_path / "startup.json"
    assert script.main(["--profile", "tiny", "--choice", "clip", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["choice"] == "clip" and result["ready_s"] > 0 and result["pss_mib"] > 100
    assert result["workers"] == ["clip_runner", "image_embed", "index_runner"]
