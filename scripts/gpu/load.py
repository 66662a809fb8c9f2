"""A load generator that uses the host's cores: `clients` concurrent POSTs to /encode_image,
spread over several processes (one asyncio httpx client each), for a fixed duration.

One Python process tops out at a few thousand small requests per second, below what a GPU
server answers; the GPU check therefore splits the clients over up to `processes` processes
(spawned, so no CUDA context is forked) and merges their records.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

REQUEST_TIMEOUT_S = 120.0


@dataclass
class LoadLevel:
    clients: int
    processes: int
    seconds: float
    requests: int
    images_per_s: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    started: float  # time.time() of the measured window, to match GPU samples
    ended: float


async def _run(url: str, images: list[bytes], clients: int, warmup_s: float, seconds: float, dim: int):
    import httpx

    from bench.clip import _one_request

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    records: list[tuple[float, str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False) as client:
        measure_from = time.time() + warmup_s
        stop_at = measure_from + seconds

        async def worker(offset: int) -> None:
            i = offset
            while time.time() < stop_at:
                began = time.time()
                latency, status = await _one_request(client, images[i % len(images)], i, dim)
                if began >= measure_from:
                    records.append((latency, status))
                i += clients

        await asyncio.gather(*(worker(k) for k in range(clients)))
    return records


def _process(args) -> list[tuple[float, str]]:
    return asyncio.run(_run(*args))


def run_level(url: str, images: list[bytes], clients: int, *, seconds: float, warmup_s: float,
              processes: int, dim: int) -> LoadLevel:
    """Load the server with `clients` clients for `seconds` after `warmup_s` (not recorded).
    Requests in flight when the window closes still count if they started inside it."""
    import numpy as np

    processes = max(1, min(processes, clients))
    shares = [clients // processes + (k < clients % processes) for k in range(processes)]
    started = time.time() + warmup_s
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        jobs = [(url, images, share, warmup_s, seconds, dim) for share in shares]
        records = [r for part in pool.map(_process, jobs) for r in part]
    ended = time.time()
    ok_ms = [t * 1000 for t, status in records if status == "200"]
    p50, p99 = (float(np.percentile(ok_ms, q)) for q in (50, 99)) if ok_ms else (float("nan"),) * 2
    statuses = dict(sorted(Counter(status for _, status in records).items()))
    window = max(ended - started, 1e-9)
    return LoadLevel(clients, processes, round(window, 2), len(records), len(ok_ms) / window, p50, p99,
                     statuses, started, ended)
