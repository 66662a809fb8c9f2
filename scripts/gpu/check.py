"""The GPU check: measure the CUDA path in one run and write what it found (docs/gpu.md).

    scripts/gpu/check.sh [--out DIR]        # on the GPU host: installs .whl/, then runs this
    scripts/gpu/check.sh --dry-run          # here: the same steps on CPU with the tiny profile

In one run, within --budget-s (a step that would not fit is recorded as skipped):
  (a) CLIP ViT-B/32 in-process throughput at each batch size, on torch (fp16 on CUDA) and, where
      the host's onnxruntime has the CUDA execution provider, on ONNX Runtime (fp32); and the
      gateway's decode + resize on the CPU, measured apart: one process, and one per core;
  (b) `bentoml serve` on the bench profile with configuration-gpu.yaml (CLIP alone), for each
      number of gateway workers tried, loaded with `encode_image` at each client count by a
      multi-process load generator (scripts/gpu/load.py);
  (c) DINOv2-base and InternViT in-process;
  (d) GPU utilization and memory from nvidia-smi during each load level of (b).
Writes check.json (every number) and check.md (the tables, and what to tune) into --out
(default: $OUT, else ./gpu-check).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mode:
    profile: str
    device: str
    bentoml_config: str
    clip_batch_sizes: tuple[int, ...]
    other_batch_sizes: tuple[int, ...]
    clients: tuple[int, ...]
    gateway_workers: tuple[int, ...]
    seconds: float  # measured window per load level
    warmup_s: float
    load_processes: int
    budget_s: float
    step_reserve_s: float  # what an in-process model step reserves
    server_start_s: float  # what a served step reserves for start and stop, beyond its load levels


MODES = {
    "gpu": Mode("bench", "cuda", "configuration-gpu.yaml", (1, 2, 4, 8, 16, 32, 64, 128, 256), (1, 16, 64),
                (1, 32, 128, 256), (2, 8), 10.0, 3.0, 8, 480.0, 60.0, 90.0),
    "dry-run": Mode("tiny", "cpu", "configuration.yaml", (1, 4), (1, 2), (1, 4), (1,), 2.0, 1.0, 2, 170.0, 15.0, 40.0),
}
OTHER_MODELS = ("dinov2", "internvit")


class Clock:
    def __init__(self, budget_s: float) -> None:
        self.deadline = time.monotonic() + budget_s

    def left(self) -> float:
        return self.deadline - time.monotonic()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny profile, short loads: checks the script itself")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-check"), help="output folder")
    p.add_argument("--budget-s", type=float, help="seconds for the whole run (default: 480, dry run 170)")
    return p.parse_args(argv)


def set_environment(mode: Mode, home: Path) -> None:
    """Before anything imports models/: the profile, device and model store of this run."""
    os.environ.update(IMAGE_EMBED_PROFILE=mode.profile, IMAGE_EMBED_DEVICE=mode.device, BENTOML_HOME=str(home),
                      HF_HUB_OFFLINE="1", BENTOML_DO_NOT_TRACK="true")
    os.environ.pop("BENTOML_CONFIG", None)


def host_facts() -> dict:
    import importlib.metadata as md

    import torch

    facts = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
             "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        facts["gpu"] = torch.cuda.get_device_name(0)
    for dist in ("bentoml", "transformers", "timm", "open-clip-torch", "onnxruntime", "onnxruntime-gpu"):
        try:
            facts[dist] = md.version(dist)
        except md.PackageNotFoundError:
            facts[dist] = None
    try:
        import onnxruntime

        facts["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    return facts


def synthetic_jpegs(n: int = 16) -> list[bytes]:
    """Photo-sized JPEGs (smooth gradients plus noise, so they compress like photos), seeded."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    sizes = [(640, 480), (1024, 768), (1280, 720), (800, 1200), (1920, 1080), (500, 500)]
    out = []
    for k in range(n):
        w, h = sizes[k % len(sizes)]
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * (k + 1)) % 256, (y * 3) % 256, ((x + y) // (k + 2)) % 256], -1)
        pixels = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def import_models(mode: Mode) -> float:
    import subprocess

    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "cli", "import-models", "--profile", mode.profile,
                    "--models", ",".join(("clip", *OTHER_MODELS))], check=True, cwd=ROOT)
    return time.monotonic() - started


def _decode_for(args) -> int:
    """Decode and resize `images` for CLIP until `seconds` pass; how many were done (one core)."""
    from bench.clip import decode_and_prepare

    from models import get_spec

    images, seconds, draft = args
    spec, done, stop = get_spec("clip"), 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        decode_and_prepare(images[done % len(images):][:1], spec, draft)
        done += 1
    return done


def decode_resize(images: list[bytes], seconds: float) -> dict:
    """The gateway's CPU work per image: one process, then one process per core (spawned);
    exact, and with IMAGE_EMBED_JPEG_DRAFT=1 (`..._draft`)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from bench.clip import decode_and_prepare

    from models import get_spec

    cores, out = os.cpu_count() or 1, {}
    for draft, suffix in ((False, ""), (True, "_draft")):
        _, ms_per_image = decode_and_prepare(images, get_spec("clip"), draft)
        with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = sum(pool.map(_decode_for, [(images, seconds, draft)] * cores))
        out |= {f"ms_per_image_one_process{suffix}": round(ms_per_image, 2),
                f"images_per_s_all_cores{suffix}": round(done / seconds, 1)}
    return {**out, "processes": cores}


def in_process(key: str, images: list[bytes], batch_sizes, engine: str = "torch") -> dict:
    """`encode_images` of model `key` on preprocessed batches (no HTTP, decoding or resizing),
    on `engine` (IMAGE_EMBED_ENGINE: torch, or onnx)."""
    import gc

    import numpy as np
    import torch
    from bench.clip import decode_and_prepare, time_batch

    from models import get_spec
    from models.device import select_device
    from models.store import load

    spec, device = get_spec(key), select_device()
    pixels, _ = decode_and_prepare(images, spec)
    os.environ["IMAGE_EMBED_ENGINE"] = engine  # read by load(); the served step keeps the default
    try:
        model = load(spec, device)
    finally:
        os.environ.pop("IMAGE_EMBED_ENGINE", None)
    engine, precision = getattr(model, "engine", "torch"), getattr(model, "precision", device.dtype)
    rows = []
    for size in batch_sizes:
        result = time_batch(model, pixels[np.arange(size) % len(pixels)])
        rows.append({"batch_size": size, "median_ms": round(result.median_ms, 2),
                     "images_per_s": round(result.images_per_s, 1)})
        print(f"  {key} ({engine}) batch {size}: {result.images_per_s:.1f} img/s", flush=True)
    del model
    gc.collect()
    if device.kind == "cuda":
        torch.cuda.empty_cache()
    return {"store_tag": spec.store_tag, "device": device.device, "engine": engine, "dtype": precision, "batches": rows}


def clip_on_onnx(mode: Mode, images: list[bytes], host: dict, clock: Clock) -> dict:
    """(a) on ONNX Runtime: on CUDA only with the CUDA execution provider (onnxruntime-gpu),
    which the host's onnxruntime may lack; the dry run measures the CPU engine instead."""
    wanted = "CUDAExecutionProvider" if mode.device == "cuda" else "CPUExecutionProvider"
    if wanted not in host.get("onnxruntime_providers", []):
        return {"skipped": f"the host's onnxruntime has no {wanted}"}
    if clock.left() < mode.step_reserve_s + mode.server_start_s:
        return {"skipped": "out of time"}
    return in_process("clip", images, mode.clip_batch_sizes, engine="onnx")


def gateway_config(mode: Mode, workers: int, folder: Path) -> Path:
    """The mode's BentoML configuration with the gateway's worker count replaced."""
    import yaml

    config = yaml.safe_load((ROOT / mode.bentoml_config).read_text())
    config["services"]["image_embed"]["workers"] = workers
    path = folder / f"config-workers-{workers}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def served(mode: Mode, images: list[bytes], workers: int, folder: Path, sampler, clock: Clock) -> dict:
    import httpx
    from bench import serve_launcher
    from scripts.gpu.load import run_level

    from models import get_spec

    dim = get_spec("clip").output_dim
    env = {**os.environ, "BENTOML_CONFIG": str(gateway_config(mode, workers, folder))}
    home = serve_launcher.private_home(serve_launcher.shared_home())
    began = time.monotonic()
    server = serve_launcher.start(env, home, ("--arg", "models=clip"))
    result = {"gateway_workers": workers, "ready_s": round(time.monotonic() - began, 1), "levels": []}
    try:
        health = httpx.get(f"{server.url}/health", timeout=30, trust_env=False).json()
        clip = health.get("models", {}).get("clip", {})
        result["clip"] = {k: clip.get(k) for k in ("store_tag", "device", "dtype", "engine", "precision", "batching")}
        for clients in mode.clients:
            if clock.left() < mode.seconds + mode.warmup_s + 15:
                result["levels"].append({"clients": clients, "skipped": "out of time"})
                continue
            level = run_level(server.url, images, clients, seconds=mode.seconds, warmup_s=mode.warmup_s,
                              processes=mode.load_processes, dim=dim)
            row = {**asdict(level), "gpu": sampler.window(level.started, level.ended)}
            print(f"  workers {workers}, {clients} clients: {level.images_per_s:.1f} img/s, "
                  f"p50 {level.p50_ms:.1f} ms, gpu {row['gpu']}", flush=True)
            result["levels"].append(row)
    finally:
        server.stop()
    return result


def run(args: argparse.Namespace) -> dict:
    mode = MODES["dry-run" if args.dry_run else "gpu"]
    clock = Clock(args.budget_s or mode.budget_s)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        return measure(mode, clock, args.dry_run, Path(folder))


def measure(mode: Mode, clock: Clock, dry_run: bool, work: Path) -> dict:
    set_environment(mode, work / "bentoml-home")
    from scripts.gpu.gpu_util import GpuSampler

    report: dict = {"mode": "dry-run" if dry_run else "gpu", "mode_settings": asdict(mode),
                    "host": host_facts(), "skipped": {}}
    report["import_models_s"] = round(import_models(mode), 1)
    images = synthetic_jpegs()
    print("(a) CLIP in-process, decode + resize", flush=True)
    report["clip_in_process"] = in_process("clip", images, mode.clip_batch_sizes)
    report["clip_in_process_onnx"] = clip_on_onnx(mode, images, report["host"], clock)
    report["decode_resize"] = decode_resize(images, mode.seconds / 2)
    print("(c) DINOv2 and InternViT in-process", flush=True)
    report["other_in_process"] = {}
    for key in OTHER_MODELS:
        if clock.left() < mode.step_reserve_s + mode.server_start_s:
            report["skipped"][key] = "out of time"
            continue
        report["other_in_process"][key] = in_process(key, images, mode.other_batch_sizes)
    print("(b) served encode_image, (d) GPU utilization", flush=True)
    report["served"] = []
    with GpuSampler() as sampler:
        report["gpu_sampler"] = "nvidia-smi" if sampler.available else "unavailable (no nvidia-smi)"
        for workers in mode.gateway_workers:
            need = mode.server_start_s + len(mode.clients) * (mode.seconds + mode.warmup_s + 5)
            if clock.left() < need and report["served"]:
                report["skipped"][f"served_workers_{workers}"] = "out of time"
                continue
            report["served"].append(served(mode, images, workers, work, sampler, clock))
    report["tuning"] = tuning(report)
    report["seconds_left"] = round(clock.left(), 1)
    return report


def tuning(report: dict) -> dict:
    """What the numbers suggest: the batch size where in-process throughput levels off, the best
    served configuration, and how many cores decoding needs to keep up with the model."""
    rows = report["clip_in_process"]["batches"]
    peak = max(r["images_per_s"] for r in rows)
    knee = min(r["batch_size"] for r in rows if r["images_per_s"] >= 0.9 * peak)
    dec = report["decode_resize"]
    per_core = 1000 / max(dec["ms_per_image_one_process"], 1e-9)
    per_core_draft = 1000 / max(dec.get("ms_per_image_one_process_draft", dec["ms_per_image_one_process"]), 1e-9)
    levels = [(s["gateway_workers"], lv) for s in report["served"] for lv in s["levels"] if "images_per_s" in lv]
    best = max(levels, key=lambda wl: wl[1]["images_per_s"], default=None)
    out = {"in_process_peak_images_per_s": peak, "batch_size_at_90pct_of_peak": knee,
           "decode_cores_to_match_peak": math.ceil(peak / per_core),
           "decode_cores_to_match_peak_jpeg_draft": math.ceil(peak / per_core_draft)}
    if best:
        out["served_best"] = {"gateway_workers": best[0], "clients": best[1]["clients"],
                              "images_per_s": round(best[1]["images_per_s"], 1), "gpu": best[1]["gpu"]}
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = run(args)
    from scripts.gpu.report import markdown

    (args.out / "check.json").write_text(json.dumps(report, indent=2))
    (args.out / "check.md").write_text(markdown(report))
    print((args.out / "check.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
