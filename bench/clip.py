"""Measure CLIP image-embedding throughput: the model alone, the served bundle, a naive server.

    python -m bench                          # bench profile: ViT-B/32, random weights
    python -m bench --scenario analyze ...   # another scenario (bench/README.md), with its own options:
                                             # `python -m bench --scenario X -h`
    python -m bench --profile tiny --requests 40          # a quick smoke run
    python -m bench --url http://127.0.0.1:3000 --skip-naive   # a server already up
    python -m bench --json results.json

First the profile's models are put into the BentoML model store (idempotent, offline for bench
and tiny). Then, in one run:

in-process   CLIP's `encode_images` on the configured engine (models.store.load) called directly on preprocessed uint8 batches, at each
             --batch-sizes. `ms/batch` is the median latency of one forward; `images/s` is
             batch size / that median. The best images/s is the ceiling any server can reach
             on this machine (it excludes HTTP, decoding and resizing).
served       `bentoml serve .` started here (or --url), loaded with --requests POSTs to
             /encode_image (multipart `image`, JPEG bytes) by N concurrent clients.
naive        bench/naive_server.py under the same load: FastAPI + uvicorn, one forward of a
             batch of one per request, behind a lock (what the old seed services did).

For each load: `images/s` = successful (200) responses / wall time; `p50`/`p99` = latency
percentiles of the successful requests, seen by the client (queueing included); `statuses` =
responses by status code, including 5xx, `200-bad-body` (a 200 that is not a list of
embedding floats) and client-side errors by exception name. Ratios: served/in-process = best
served images/s over best in-process images/s (how much of the model's ceiling the server
delivers); served/naive = served images/s over naive images/s at the same concurrency.

The load generator runs on the same machine as the servers and competes with them for CPU:
compare numbers from one machine and one run. All traffic goes to 127.0.0.1. Servers started
here get IMAGE_EMBED_PROFILE=--profile and BENTOML_CONFIG=--bentoml-config, log to a temp file
(kept, and named, when something went wrong) and are always stopped, on errors and Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import os
import platform
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import SCENARIOS
from bench.server import GRACEFUL_SHUTDOWN_S, free_port, server_env, server_process

ROOT = Path(__file__).resolve().parent.parent

PROFILE_CHOICES = ("bench", "tiny", "default")
NOISE_SIZES = ((320, 240), (640, 480), (800, 1200), (1280, 720), (1920, 1080))
REQUEST_TIMEOUT_S = 180.0
MIN_SECONDS_PER_BATCH_SIZE = 2.0  # in-process: time each batch size at least this long ...
MIN_ITERATIONS, MAX_ITERATIONS = 3, 200  # ... and at least / at most this many forwards


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(
        prog="python -m bench", description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenario", choices=list(SCENARIOS), default="clip",
                   help="clip (this one, the default) or another benchmark: `--scenario X -h` shows its options")
    p.add_argument("--profile", choices=PROFILE_CHOICES, default="bench", help="model profile (default: bench)")
    p.add_argument("--requests", type=int, default=200, help="requests per concurrency level (default: 200)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="client counts (default: 1 8 32)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32], help="in-process batch sizes")
    p.add_argument("--url", help="benchmark this running server instead of starting one (e.g. http://127.0.0.1:3000)")
    p.add_argument("--port", type=int, help="port for the served server this script starts (default: a free one)")
    p.add_argument("--skip-served", action="store_true", help="do not measure the BentoML server")
    p.add_argument("--skip-naive", action="store_true", help="do not measure the naive baseline server")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every number to this JSON file")
    p.add_argument("--bentoml-config", default=str(ROOT / "configuration.yaml"), metavar="PATH",
                   help="BENTOML_CONFIG of the served server (default: configuration.yaml; '' for none)")
    args = p.parse_args(argv)
    if args.requests < 1 or min(args.concurrency) < 1 or min(args.batch_sizes) < 1:
        p.error("--requests, --concurrency and --batch-sizes must be positive")
    return args


def make_test_images() -> list[bytes]:
    """Three real photographs and seeded noise of varied sizes, as JPEG bytes."""
    import numpy as np
    import skimage.data
    from PIL import Image

    arrays = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    rng = np.random.default_rng(0)
    arrays += [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for w, h in NOISE_SIZES]
    out = []
    for array in arrays:
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


@dataclass
class BatchResult:
    batch_size: int
    iterations: int
    median_ms: float
    min_ms: float
    images_per_s: float


def decode_and_prepare(images: list[bytes], spec, jpeg_draft: bool = False):
    """Decode with the gateway's safe decoder and resize, as `encode_image` does (with
    IMAGE_EMBED_JPEG_DRAFT=`jpeg_draft`): a uint8 (n, size, size, 3) batch, and the mean
    milliseconds this took per image."""
    from intake.decode import decode_image
    from config.sections import IntakeSettings
    from models.preprocess import decoded_side, prepare_images

    settings = IntakeSettings(jpeg_draft=jpeg_draft)
    started = time.perf_counter()
    batch = prepare_images([decode_image(b, settings, decoded_side(spec)).image for b in images], spec)
    return batch, (time.perf_counter() - started) * 1000 / len(images)


def time_batch(model, batch) -> BatchResult:
    import numpy as np

    for _ in range(2):  # warm-up: allocator, kernels, thread pool
        model.encode_images(batch)
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < MIN_ITERATIONS or (
        time.perf_counter() - started < MIN_SECONDS_PER_BATCH_SIZE and len(times) < MAX_ITERATIONS
    ):
        t0 = time.perf_counter()
        model.encode_images(batch)
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    return BatchResult(len(batch), len(times), median * 1000, min(times) * 1000, len(batch) / median)


def bench_in_process(spec, pixels, batch_sizes: list[int]) -> tuple[list[BatchResult], dict]:
    import gc

    import numpy as np
    import torch
    from tqdm import tqdm

    from models.device import select_device
    from models.onnx_engine import engine_fields
    from models.store import load

    device = select_device()
    model = load(spec, device)
    facts = {"device": device.device, "device_name": device.name, "dtype": device.dtype, **engine_fields(model, device),
             "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    results = []
    for size in tqdm(batch_sizes, desc="in-process", unit="batch size"):
        batch = pixels[np.arange(size) % len(pixels)]
        results.append(time_batch(model, batch))
    del model
    gc.collect()
    if device.kind == "cuda":
        torch.cuda.empty_cache()
    return results, facts


@dataclass
class LoadResult:
    scenario: str
    concurrency: int
    requests: int
    wall_s: float
    images_per_s: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]


def _is_embedding(response, dim: int) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, list) and len(body) == dim and all(isinstance(v, float) for v in body[:4])


async def _one_request(client, data: bytes, index: int, dim: int) -> tuple[float, str]:
    import httpx

    started = time.perf_counter()
    try:
        response = await client.post("/encode_image", files={"image": (f"img{index}.jpg", data, "image/jpeg")})
        status = str(response.status_code)
        if status == "200" and not _is_embedding(response, dim):
            status = "200-bad-body"
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    return time.perf_counter() - started, status


async def _load(url: str, images: list[bytes], concurrency: int, n: int, dim: int, bar=None):
    import httpx

    counter = itertools.count()
    records: list[tuple[float, str]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False) as client:

        async def worker() -> None:
            while (i := next(counter)) < n:
                records.append(await _one_request(client, images[i % len(images)], i, dim))
                if bar is not None:
                    bar.update()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records, time.perf_counter() - started


def run_load(scenario: str, url: str, images: list[bytes], concurrency: int, n: int, dim: int,
             warm_up: bool = True) -> LoadResult:
    import numpy as np
    from tqdm import tqdm

    if warm_up:
        asyncio.run(_load(url, images, concurrency, max(concurrency, 8), dim))  # not recorded
    with tqdm(total=n, desc=f"{scenario} x{concurrency}", unit="req") as bar:
        records, wall = asyncio.run(_load(url, images, concurrency, n, dim, bar))
    ok_ms = [t * 1000 for t, status in records if status == "200"]
    p50, p99 = (float(np.percentile(ok_ms, q)) for q in (50, 99)) if ok_ms else (float("nan"),) * 2
    statuses = dict(sorted(Counter(status for _, status in records).items()))
    return LoadResult(scenario, concurrency, n, wall, len(ok_ms) / wall, p50, p99, statuses)


def server_facts(health: dict, spec) -> dict:
    """What the served server says it runs (GET /health), checked against the profile measured here."""
    clip = health.get("models", {}).get("clip", {})
    facts = {k: clip[k] for k in ("store_tag", "device", "dtype", "batching") if k in clip}
    if facts.get("store_tag") not in (None, spec.store_tag):
        print(f"WARNING: the server runs {facts['store_tag']}, not {spec.store_tag}: ratios compare different models")
    return facts


def get_json(url: str) -> dict:
    import httpx

    try:
        data = httpx.get(url, timeout=10, trust_env=False).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def measure(scenario: str, url: str, images, args, dim: int) -> list[LoadResult]:
    return [run_load(scenario, url, images, c, args.requests, dim) for c in args.concurrency]


def bench_served(args, images, spec) -> tuple[list[LoadResult], dict]:
    if args.url:
        url = args.url.rstrip("/")
        facts = server_facts(get_json(f"{url}/health"), spec)
        return measure("served", url, images, args, spec.output_dim), facts
    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    # A /readyz probe answered during start-up can stay pending until the gateway's traffic timeout
    # (60 s), and uvicorn waits for it on SIGTERM: bound that wait so the server stops promptly.
    cmd = [str(Path(sys.executable).parent / "bentoml"), "serve", ".", "--host", "127.0.0.1", "--port", str(port),
           "--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_S)]
    with server_process("served", cmd, server_env(args.profile, args.bentoml_config), f"{url}/readyz"):
        facts = server_facts(get_json(f"{url}/health"), spec)
        return measure("served", url, images, args, spec.output_dim), facts


def bench_naive(args, images, spec) -> tuple[list[LoadResult], dict]:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.naive_server", "--profile", args.profile, "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with server_process("naive", cmd, server_env(args.profile), f"{url}/readyz"):
        facts = get_json(f"{url}/readyz")
        return measure("naive", url, images, args, spec.output_dim), facts


def ratios(report: dict) -> dict:
    best_in_process = max((r["images_per_s"] for r in report["in_process"]), default=0.0)
    served = {r["concurrency"]: r["images_per_s"] for r in report.get("served", [])}
    naive = {r["concurrency"]: r["images_per_s"] for r in report.get("naive", [])}
    out: dict = {"best_in_process_images_per_s": best_in_process}
    if served and best_in_process:
        out["served_over_in_process"] = max(served.values()) / best_in_process
    out["served_over_naive"] = {c: served[c] / naive[c] for c in served if naive.get(c)}
    return out


def print_report(report: dict) -> None:
    print("\n== machine")
    for key, value in report["facts"].items():
        print(f"  {key:22s} {value}")
    for name in ("served_server", "naive_server"):
        if report.get(name):
            print(f"  {name:22s} {json.dumps(report[name], default=str)}")
    print("\n== in-process encode_images (model only, preprocessed uint8 input)")
    print(f"  {'batch':>5} {'iters':>6} {'ms/batch':>10} {'min ms':>10} {'images/s':>10}")
    for r in report["in_process"]:
        print(f"  {r['batch_size']:>5} {r['iterations']:>6} {r['median_ms']:>10.1f} {r['min_ms']:>10.1f} "
              f"{r['images_per_s']:>10.1f}")
    loads = report.get("served", []) + report.get("naive", [])
    if loads:
        print("\n== POST /encode_image under load (client-side latency; images/s counts 200s only)")
        print(f"  {'scenario':<9} {'conc':>5} {'requests':>8} {'images/s':>10} {'p50 ms':>9} {'p99 ms':>9}  statuses")
        for r in loads:
            statuses = " ".join(f"{k}:{v}" for k, v in r["statuses"].items())
            print(f"  {r['scenario']:<9} {r['concurrency']:>5} {r['requests']:>8} {r['images_per_s']:>10.1f} "
                  f"{r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f}  {statuses}")
        errors = sum(n for r in loads for k, n in r["statuses"].items() if k != "200")
        if errors:
            print(f"  WARNING: {errors} request(s) did not succeed (see statuses)")
    rat = report["ratios"]
    print(f"\n== ratios\n  best in-process images/s      {rat['best_in_process_images_per_s']:.1f}")
    if "served_over_in_process" in rat:
        print(f"  served / in-process (best)    {rat['served_over_in_process']:.2f}")
    for c, value in rat["served_over_naive"].items():
        print(f"  served / naive at {c:>3} clients {value:.2f}")


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `finally`s that stop the servers


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["IMAGE_EMBED_PROFILE"] = args.profile  # before `models` is imported
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # open_clip warns about every random-weight model

    from models import get_spec, list_models
    from models.store import import_spec

    imports = [import_spec(s) for s in list_models(args.profile)]  # idempotent; offline for bench and tiny
    stored = [f"{r.tag} ({'imported' if r.created else 'present'})" for r in imports]
    spec = get_spec("clip", args.profile)
    images = make_test_images()
    pixels, prep_ms = decode_and_prepare(images, spec)
    in_process, device_facts = bench_in_process(spec, pixels, args.batch_sizes)
    report: dict = {
        "facts": {
            "profile": args.profile,
            "model": f"{spec.display_name} ({spec.arch}, {'random' if spec.random_weights else spec.pretrained})",
            "store_tag": spec.store_tag,
            "model_store": "; ".join(stored),
            "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            **device_facts,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "test_images": f"{len(images)} JPEGs, {sum(map(len, images)) / len(images) / 1024:.0f} KiB mean",
            "decode_prepare_ms": round(prep_ms, 2),
            "requests_per_level": args.requests,
        },
        "in_process": [asdict(r) for r in in_process],
    }
    if not args.skip_served:
        served, report["served_server"] = bench_served(args, images, spec)
        report["served"] = [asdict(r) for r in served]
    if not args.skip_naive:
        naive, report["naive_server"] = bench_naive(args, images, spec)
        report["naive"] = [asdict(r) for r in naive]
    report["ratios"] = ratios(report)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
