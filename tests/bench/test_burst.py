"""bench/burst.py: the runner's queue time read from /metrics, and the summary."""

from __future__ import annotations


import pytest

from bench import burst as bench_burst

METRICS = """\
image_embed_queue_seconds_count{method="encode_images",reason="max_wait",runner="clip",worker_index="1"} 3.0
image_embed_queue_seconds_sum{method="encode_images",reason="max_wait",runner="clip",worker_index="1"} 0.015
image_embed_queue_seconds_count{method="encode_images",reason="full",runner="clip",worker_index="1"} 16.0
image_embed_queue_seconds_sum{method="encode_images",reason="full",runner="clip",worker_index="1"} 8.0
image_embed_queue_seconds_count{method="encode_texts",reason="full",runner="clip",worker_index="1"} 99.0
image_embed_queue_seconds_count{method="encode_dinov2",reason="full",runner="dino",worker_index="1"} 99.0
"""


def test_queue_stats_sums_the_clip_image_series_by_reason():
    assert bench_burst.queue_stats(METRICS) == {
        "count": 19.0, "sum": pytest.approx(8.015), "reason:max_wait": 3.0, "reason:full": 16.0,
    }


def _phases(before: float, after: float, rate: float) -> dict:
    row = {"images_per_s": rate, "p50_ms": before}
    return {"before": row, "x8": row, "x32": row, "batch": row, "after": {**row, "p50_ms": after}}


def test_summary_compares_after_with_before_and_the_modes_throughput():
    results = {"onnx-int8": {"bounded": _phases(56, 60, 33.0), "bentoml": _phases(56, 1230, 30.0)}}
    row = bench_burst.summary(results)["onnx-int8"]
    assert row["bounded_p50_after_over_before"] == 1.07 and row["bentoml_p50_after_over_before"] == 21.96
    assert row["bounded_over_bentoml_images_per_s"] == {"x8": 1.1, "x32": 1.1, "batch": 1.1}


def test_arguments():
    args = bench_burst.parse_args(["--engines", "torch", "--modes", "bentoml", "--lone", "3"])
    assert (args.engines, args.modes, args.lone, args.profile) == (["torch"], ["bentoml"], 3, "bench")
    with pytest.raises(SystemExit):
        bench_burst.parse_args(["--lone", "0"])
