"""Where a served load's CPU goes: core-milliseconds per image by process, and the runner's batching.

`measured_load(url, family, ...)` runs one load (bench/clip.py `run_load`) and adds, per
successful image:
- `cpu_ms_per_image`: CPU time (user + system, every thread) of each role of the server's
  processes, by their command lines: `gateway` (the image_embed workers), `runner` (the model
  runner), `other` (the arbiter, the index runner), and `load_generator` (this process, which
  sends the requests);
- from the server's /metrics (runners/metrics.py): `mean_batch` (images per runner forward)
  and `model_ms_per_image` (the wall time of those forwards, per image).

On a machine where everything shares the same cores, the served rate is bounded by
1000 x cores / (the sum of cpu_ms_per_image): what the gateway and the load generator spend is
what the model does not get.
"""

from __future__ import annotations

import re
import resource
import time
from typing import Any

METRICS = ("image_embed_batch_items_sum", "image_embed_batch_items_count", "image_embed_inference_seconds_sum")


def role(cmdline: str, runner: str, gateway: str = "image_embed") -> str:
    """gateway, runner or other, from a server process's command line (`--service-name X`)."""
    found = re.search(r"--service-name (\S+)", cmdline)
    name = found.group(1) if found else None
    return "runner" if name == runner else "gateway" if name == gateway else "other"


def cpu_seconds(family: list, runner: str) -> dict[str, float]:
    """CPU seconds so far of each role's processes."""
    import psutil

    out = {"gateway": 0.0, "runner": 0.0, "other": 0.0}
    for process in family:
        try:
            times = process.cpu_times()
            out[role(" ".join(process.cmdline()), runner)] += times.user + times.system
        except psutil.Error:
            continue  # gone: its time is lost, and says so by being small
    return out


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse_metrics(text: str, method: str = "encode_images") -> dict[str, float]:
    """The runner batch counters of `method` in Prometheus text, summed over label sets."""
    return {
        name: sum(float(v) for v in re.findall(rf'^{name}\{{[^}}]*method="{method}"[^}}]*\}} (\S+)$', text, re.M))
        for name in METRICS
    }


def runner_metrics(url: str) -> dict[str, float]:
    """parse_metrics of the server's /metrics (zeros when it cannot be read)."""
    import httpx

    try:
        return parse_metrics(httpx.get(f"{url}/metrics", timeout=10, trust_env=False).text)
    except httpx.HTTPError:
        return parse_metrics("")


def measured_load(url: str, family: list, images: list[bytes], concurrency: int, n: int, dim: int,
                  scenario: str, runner: str = "clip_runner") -> dict[str, Any]:
    from bench import clip

    # Warm-up, not recorded: connections, and BentoML's batching dispatcher, which trains its
    # latency model on a server's first batches while polling every millisecond.
    clip.run_load(f"{scenario} warm-up", url, images, concurrency, max(2 * concurrency, 24), dim)
    metrics0, cpu0, own0 = runner_metrics(url), cpu_seconds(family, runner), own_cpu_seconds()
    started = time.perf_counter()
    result = clip.run_load(scenario, url, images, concurrency, n, dim, warm_up=False)  # only what is counted
    cpu1, own1 = cpu_seconds(family, runner), own_cpu_seconds()
    window_s = time.perf_counter() - started
    metrics1 = runner_metrics(url)
    ok = max(1, result.statuses.get("200", 0))
    cpu = {k: round((cpu1[k] - cpu0[k]) * 1000 / ok, 1) for k in cpu0}
    cpu["load_generator"] = round((own1 - own0) * 1000 / ok, 1)
    delta = {k: metrics1[k] - metrics0[k] for k in METRICS}
    items = delta["image_embed_batch_items_sum"]
    return {
        **vars(result),
        "cpu_ms_per_image": cpu,
        "cpu_window_s": round(window_s, 3),  # the CPU times' window: the load, its client set-up included
        "runner_items": int(items),  # images the runner embedded in it: the load's, and only those
        "mean_batch": round(items / delta["image_embed_batch_items_count"], 1) if items else None,
        "model_ms_per_image": round(delta["image_embed_inference_seconds_sum"] * 1000 / items, 1) if items else None,
    }
