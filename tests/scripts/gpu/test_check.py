"""scripts/gpu/check.sh: the dry run (CPU, tiny profile) does every step the GPU run does, and
writes the JSON and Markdown the GPU run writes; the tuning summary reads the numbers right."""

from __future__ import annotations

import importlib
import json
import subprocess

import pytest

from tests.conftest import ROOT

CHECK = ROOT / "scripts" / "gpu" / "check.sh"


@pytest.fixture(scope="module")
def check():
    return importlib.import_module("scripts.gpu.check")


def test_tuning_reads_the_knee_the_best_served_run_and_the_decode_cores(check):
    report = {
        "clip_in_process": {"batches": [{"batch_size": b, "images_per_s": v}
                                        for b, v in ((1, 100.0), (64, 2700.0), (128, 2950.0), (256, 3000.0))]},
        "decode_resize": {"ms_per_image_one_process": 4.0, "ms_per_image_one_process_draft": 2.0},
        "served": [{"gateway_workers": 2, "levels": [{"clients": 32, "images_per_s": 900.0, "gpu": None},
                                                     {"clients": 128, "skipped": "out of time"}]},
                   {"gateway_workers": 8, "levels": [{"clients": 128, "images_per_s": 2500.0, "gpu": {"util_mean_pct": 85}}]}],
    }
    tuning = check.tuning(report)
    assert tuning["batch_size_at_90pct_of_peak"] == 64
    assert tuning["decode_cores_to_match_peak"] == 12  # 3000 img/s at 250 img/s per core
    assert tuning["decode_cores_to_match_peak_jpeg_draft"] == 6  # at 500 img/s per core
    assert tuning["served_best"] == {"gateway_workers": 8, "clients": 128, "images_per_s": 2500.0,
                                     "gpu": {"util_mean_pct": 85}}


@pytest.mark.integration
def test_the_dry_run_measures_every_step_and_writes_json_and_markdown(tmp_path):
    done = subprocess.run([str(CHECK), "--dry-run", "--out", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["mode"] == "dry-run" and report["skipped"] == {}
    clip = report["clip_in_process"]
    assert [r["batch_size"] for r in clip["batches"]] == [1, 4] and all(r["images_per_s"] > 0 for r in clip["batches"])
    assert clip["engine"] == "torch"
    onnx = report["clip_in_process_onnx"]  # the dry run measures ONNX Runtime on the CPU
    assert onnx["engine"] == "onnx" and [r["batch_size"] for r in onnx["batches"]] == [1, 4]
    assert report["decode_resize"]["images_per_s_all_cores"] > 0
    assert report["decode_resize"]["images_per_s_all_cores_draft"] > 0
    assert set(report["other_in_process"]) == {"dinov2", "internvit"}
    [run] = report["served"]
    assert run["clip"]["device"] == "cpu" and run["clip"]["engine"] == "onnx"  # the CPU default
    assert [lv["clients"] for lv in run["levels"]] == [1, 4]
    for level in run["levels"]:
        assert level["images_per_s"] > 0 and set(level["statuses"]) == {"200"}, level
    assert report["gpu_sampler"].startswith("unavailable")  # no nvidia-smi here
    markdown = (tmp_path / "check.md").read_text()
    for heading in ("## (a) CLIP in-process", "## (b) served `encode_image`", "## (c) other models", "## What to tune"):
        assert heading in markdown
