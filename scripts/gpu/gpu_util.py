"""GPU utilization and memory, sampled from `nvidia-smi` in a background thread.

`nvidia-smi --query-gpu=utilization.gpu` reports the share of the last sample period
(1/6 s to 1 s, by GPU) in which a kernel ran: 100% means the GPU was never idle, not that
its cores were all busy. On a machine without nvidia-smi (the dry run) nothing is sampled.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

QUERY = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "--id=0"]


class GpuSampler:
    def __init__(self, period_s: float = 0.25) -> None:
        self.binary = shutil.which("nvidia-smi")
        self.period_s = period_s
        self.samples: list[tuple[float, float, float]] = []  # (time.time(), util %, MiB used)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @property
    def available(self) -> bool:
        return self.binary is not None

    def __enter__(self) -> GpuSampler:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run([self.binary, *QUERY], capture_output=True, text=True, timeout=5).stdout
                util, mem = (float(v) for v in out.strip().split(",")[:2])
                self.samples.append((time.time(), util, mem))
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
            self._stop.wait(self.period_s)

    def window(self, start: float, end: float) -> dict | None:
        """Mean and median utilization, and peak memory, of the samples in [start, end]."""
        inside = [(u, m) for t, u, m in self.samples if start <= t <= end]
        if not inside:
            return None
        utils = sorted(u for u, _ in inside)
        return {"samples": len(inside), "util_mean_pct": round(sum(utils) / len(utils), 1),
                "util_median_pct": utils[len(utils) // 2], "memory_peak_mib": max(m for _, m in inside)}
