"""bench/served_cpu.py against the session's real server: a load's CPU per image by process
role, and the runner's batching read back from /metrics."""

from __future__ import annotations

import os

import psutil
import pytest

from tests.conftest import encode, noise_image, photo

from bench import served_cpu

pytestmark = pytest.mark.integration


def test_measured_load_splits_cpu_by_role_and_reads_the_batches(server):
    root = psutil.Process(server.process.pid)
    family = [root, *root.children(recursive=True)]
    images = [encode(photo(), "JPEG"), encode(noise_image(640, 480, 3), "JPEG")]
    row = served_cpu.measured_load(server.url, family, images, concurrency=4, n=24, dim=512, scenario="test")
    assert row["statuses"] == {"200": 24}
    cpu = row["cpu_ms_per_image"]
    assert set(cpu) == {"gateway", "runner", "other", "load_generator"}
    assert cpu["gateway"] > 0 and cpu["runner"] > 0 and cpu["load_generator"] > 0
    assert 1 <= row["mean_batch"] <= 4 and row["model_ms_per_image"] > 0
    assert row["runner_items"] == 24  # no warm-up request inside the measured window
    # Only the counted requests' work is in the window: CPU seconds per second of it <= the cores.
    cores_busy = sum(cpu.values()) * 24 / 1000 / row["cpu_window_s"]
    assert 0 < cores_busy <= (os.cpu_count() or 1) * 1.05, cores_busy
