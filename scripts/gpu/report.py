"""check.md: the GPU check's numbers as Markdown tables (check.json holds every number)."""

from __future__ import annotations


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def _gpu(level: dict) -> str:
    gpu = level.get("gpu")
    return f"{gpu['util_mean_pct']}% ({gpu['samples']} samples)" if gpu else "n/a"


def markdown(report: dict) -> str:
    host = report["host"]
    lines = [f"# GPU check ({report['mode']})", "",
             f"Host: {host.get('gpu', 'no GPU')}, {host['cpu_count']} cores, Python {host['python']}, "
             f"torch {host['torch']} (CUDA {host['cuda']}), bentoml {host['bentoml']}, "
             f"onnxruntime {host.get('onnxruntime') or host.get('onnxruntime-gpu')} "
             f"{host.get('onnxruntime_providers', '')}. Profile `{report['mode_settings']['profile']}`.", ""]
    clip, onnx = report["clip_in_process"], report["clip_in_process_onnx"]
    lines += [f"## (a) CLIP in-process ({clip['store_tag']}, {clip['device']})", ""]
    onnx_rows = {r["batch_size"]: r for r in onnx.get("batches", [])}
    onnx_head = f"ONNX Runtime {onnx['dtype']} img/s" if onnx_rows else "ONNX Runtime"
    lines += _table(["batch", f"torch {clip['dtype']} ms/batch", "torch img/s", onnx_head],
                    [[r["batch_size"], r["median_ms"], r["images_per_s"],
                      onnx_rows.get(r["batch_size"], {}).get("images_per_s", onnx.get("skipped", ""))]
                     for r in clip["batches"]])
    dec = report["decode_resize"]
    lines += [f"Decode + resize on the CPU: {dec['ms_per_image_one_process']} ms/image in one process; "
              f"{dec['images_per_s_all_cores']} img/s on {dec['processes']} processes. With "
              f"IMAGE_EMBED_JPEG_DRAFT=1: {dec.get('ms_per_image_one_process_draft')} ms/image; "
              f"{dec.get('images_per_s_all_cores_draft')} img/s on {dec['processes']} processes.", ""]
    lines += ["## (b) served `encode_image`, (d) GPU utilization", ""]
    rows = []
    for run in report["served"]:
        for lv in run["levels"]:
            if "skipped" in lv:
                rows.append([run["gateway_workers"], lv["clients"], "skipped", "", "", "", ""])
                continue
            rows.append([run["gateway_workers"], lv["clients"], round(lv["images_per_s"], 1), round(lv["p50_ms"], 1),
                         round(lv["p99_ms"], 1), _gpu(lv), lv["statuses"]])
    lines += _table(["gateway workers", "clients", "img/s", "p50 ms", "p99 ms", "GPU util (mean)", "statuses"], rows)
    lines += ["## (c) other models in-process", ""]
    rows = [[key, m["store_tag"], r["batch_size"], r["median_ms"], r["images_per_s"]]
            for key, m in report["other_in_process"].items() for r in m["batches"]]
    lines += _table(["model", "store tag", "batch", "ms/batch", "img/s"], rows)
    lines += ["## What to tune", "", *(f"- {k}: {v}" for k, v in report["tuning"].items()), ""]
    if report["skipped"]:
        lines += ["Skipped: " + ", ".join(f"{k} ({v})" for k, v in report["skipped"].items()), ""]
    return "\n".join(lines)
