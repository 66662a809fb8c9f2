"""One client, then bursts, then one client again: does a burst leave lone requests slow?

    python -m bench --scenario burst    # bench profile; torch, ONNX fp32 and int8; bounded, bentoml
    python -m bench --scenario burst --profile tiny --engines onnx-fp32 --lone 6 --requests 24 \
        --batch-requests 2                           # a smoke run

For each engine (--engines), two `bentoml serve .` with models=clip: IMAGE_EMBED_BATCH_WAIT=bounded
(the runner holds a request for company at most its model's max_batch_wait_ms;
runners/batching_wait.py) and =bentoml (BentoML's own dispatcher: today's behaviour without the
patch). Each server gets the same sequence of phases, POSTs of JPEGs (bench/clip.py's
test images) to /encode_image unless said otherwise:

    before   --lone requests from 1 client (after 16 unrecorded ones: BentoML calibrates its
             dispatcher on a runner's first ~10 batches)
    x8       --requests from 8 concurrent clients
    x32      --requests from 32 concurrent clients
    batch    --batch-requests POSTs of --batch-images images each to /encode_images, from 2
             clients (a bulk import)
    after    --lone requests from 1 client

The two servers of an engine are up together and each phase runs on one, then the other, so a
slow spell of the machine falls on both alike (an idle server uses no CPU, and BentoML's
dispatcher changes its estimates only when it serves). Per phase: images/s (200s only), the
client's p50/p99, statuses, and the runner's own mean queue time per image with the reasons its
batches went (image_embed_queue_seconds). Targets (issue 19): with the bound, p50 `after`
within 20% of `before`; images/s at 8 and 32 clients within 10% of BentoML's own. Everything
shares this machine's cores, load generator included: compare numbers of one run. All traffic
goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODES = ("bounded", "bentoml")
PHASES = ("before", "x8", "x32", "batch", "after")
QUEUE = "image_embed_queue_seconds"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from bench.engines import ENGINES

    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=summary, epilog=details,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("bench", "tiny", "default"), default="bench",
                   help="model profile (default: bench)")
    p.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES),
                   help="engines (default: all three)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                   help="IMAGE_EMBED_BATCH_WAIT values (default: both)")
    p.add_argument("--lone", type=int, default=30, help="requests of the 1-client phases (default: 30)")
    p.add_argument("--requests", type=int, default=160, help="requests of the 8- and 32-client phases (default: 160)")
    p.add_argument("--batch-requests", type=int, default=8,
                   help="POSTs to /encode_images in the batch phase (default: 8)")
    p.add_argument("--batch-images", type=int, default=16, help="images per batch POST (default: 16)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every number to this JSON file")
    args = p.parse_args(argv)
    if min(args.lone, args.requests, args.batch_requests, args.batch_images) < 1:
        p.error("--lone, --requests, --batch-requests and --batch-images must be positive")
    return args


WARM_UP = 16  # unrecorded lone requests first: BentoML calibrates on a runner's first ~10 batches


def queue_stats(text: str) -> dict[str, float]:
    """The clip runner's encode_images queue time in Prometheus text: count and sum over every
    series, and the count per reason ("reason:<name>")."""
    out: dict[str, float] = {}
    for kind, labels, value in re.findall(rf'^{QUEUE}_(count|sum)\{{([^}}]*)\}} (\S+)$', text, re.M):
        if 'runner="clip"' in labels and 'method="encode_images"' in labels:
            out[kind] = out.get(kind, 0.0) + float(value)
            if kind == "count":
                reason = re.search(r'reason="([^"]*)"', labels)
                key = f"reason:{reason.group(1) if reason else '?'}"
                out[key] = out.get(key, 0.0) + float(value)
    return out


async def _batch_load(url: str, images: list[bytes], clients: int, n: int, per_request: int) -> tuple[list, float]:
    import httpx
    from tqdm import tqdm

    left = iter(range(n))
    records: list[tuple[float, str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=600, trust_env=False) as client:

        async def one_client(bar) -> None:
            for i in left:
                files = [("images", (f"{i}-{j}.jpg", images[(i + j) % len(images)], "image/jpeg"))
                         for j in range(per_request)]
                started = time.perf_counter()
                try:
                    response = await client.post("/encode_images", files=files)
                    ok = response.status_code == 200 and all(r.get("embedding") for r in response.json()["results"])
                    status = "200" if ok else str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                records.append((time.perf_counter() - started, status))
                bar.update()

        with tqdm(total=n, desc=f"batch x{per_request}", unit="req", leave=False) as bar:
            started = time.perf_counter()
            await asyncio.gather(*(one_client(bar) for _ in range(clients)))
    return records, time.perf_counter() - started


def run_phase(phase: str, url: str, images: list[bytes], args, dim: int, label: str) -> dict:
    import numpy as np

    from bench import clip

    import httpx

    def stats() -> dict[str, float]:
        return queue_stats(httpx.get(f"{url}/metrics", timeout=10, trust_env=False).text)

    if phase == "before":
        clip.run_load(f"{label} warm-up", url, images, 1, WARM_UP, dim, warm_up=False)
    q0 = stats()
    if phase == "batch":
        records, wall = asyncio.run(_batch_load(url, images, 2, args.batch_requests, args.batch_images))
        ok = [t * 1000 for t, s in records if s == "200"]
        statuses: dict[str, int] = {}
        for _, s in records:
            statuses[s] = statuses.get(s, 0) + 1
        p50, p99 = (float(np.percentile(ok, q)) for q in (50, 99)) if ok else (None, None)
        row = {"images_per_s": len(ok) * args.batch_images / wall, "p50_ms": p50, "p99_ms": p99, "statuses": statuses}
    else:
        clients = {"before": 1, "x8": 8, "x32": 32, "after": 1}[phase]
        n = args.lone if clients == 1 else args.requests
        result = clip.run_load(f"{label} {phase}", url, images, clients, n, dim, warm_up=False)
        row = {k: getattr(result, k) for k in ("images_per_s", "p50_ms", "p99_ms", "statuses")}
    q1 = stats()
    count = q1.get("count", 0.0) - q0.get("count", 0.0)
    row["runner_queue_ms_mean"] = round((q1.get("sum", 0.0) - q0.get("sum", 0.0)) * 1000 / count, 1) if count else None
    row["reasons"] = {k.split(":", 1)[1]: int(v - q0.get(k, 0.0))
                      for k, v in q1.items() if k.startswith("reason:") and v > q0.get(k, 0.0)}
    row["load_average"] = round(os.getloadavg()[0], 2)
    return row


def bench_engine(engine: str, args, images: list[bytes], dim: int) -> dict:
    """Both modes' servers of `engine` up together; each phase on each in turn."""
    from bench import server as bench_server
    from bench.engines import ENGINES, own_homes

    out: dict = {}
    with contextlib.ExitStack() as stack:
        urls = {}
        for mode in args.modes:
            port = bench_server.free_port()
            urls[mode] = f"http://127.0.0.1:{port}"
            cmd = [str(Path(sys.executable).parent / "bentoml"), "serve", ".", "--host", "127.0.0.1",
                   "--port", str(port), "--timeout-graceful-shutdown", str(bench_server.GRACEFUL_SHUTDOWN_S)]
            env = {**bench_server.server_env(args.profile, str(ROOT / "configuration.yaml")), **ENGINES[engine],
                   "IMAGE_EMBED_MODELS": "clip", "IMAGE_EMBED_BATCH_WAIT": mode, **own_homes(stack, f"{engine}-{mode}")}
            stack.enter_context(bench_server.server_process(f"{engine}-{mode}", cmd, env, f"{urls[mode]}/readyz"))
            out[mode] = {}
        for phase in PHASES:
            for mode, url in urls.items():
                out[mode][phase] = run_phase(phase, url, images, args, dim, f"{engine} {mode}")
    return out


def summary(results: dict) -> dict:
    """Per engine and mode: p50 after / before; per engine: bounded / bentoml images/s per phase."""
    out: dict = {}
    for engine, modes in results.items():
        row: dict = {}
        for mode, phases in modes.items():
            before, after = phases["before"]["p50_ms"], phases["after"]["p50_ms"]
            row[f"{mode}_p50_after_over_before"] = round(after / before, 2) if before and after else None
        if {"bounded", "bentoml"} <= set(modes):
            row["bounded_over_bentoml_images_per_s"] = {
                phase: round(modes["bounded"][phase]["images_per_s"] / modes["bentoml"][phase]["images_per_s"], 2)
                for phase in ("x8", "x32", "batch") if modes["bentoml"][phase]["images_per_s"]
            }
        out[engine] = row
    return out


def print_report(report: dict) -> None:
    print("\n== machine\n  " + "\n  ".join(f"{k:20s} {v}" for k, v in report["facts"].items()))
    print("\n== phases: images/s, client p50 / p99 ms, runner queue ms per image (mean), reasons, load average")
    for engine, modes in report["results"].items():
        for mode, phases in modes.items():
            for phase, r in phases.items():
                statuses = " ".join(f"{k}:{v}" for k, v in r["statuses"].items())
                reasons = " ".join(f"{k}:{v}" for k, v in sorted(r["reasons"].items()))
                print(f"  {engine:<10} {mode:<8} {phase:<7} {r['images_per_s']:7.1f} img/s  p50 {r['p50_ms'] or 0:7.0f}"
                      f"  p99 {r['p99_ms'] or 0:7.0f}  queue {r['runner_queue_ms_mean'] or 0:7.1f}  {reasons:<40}"
                      f" {statuses}  load {r['load_average']}")
    print("\n== summary (targets: bounded p50 after/before <= 1.2;"
          " bounded/bentoml images/s at x8 and x32 within 0.9-1.1)")
    for engine, row in report["summary"].items():
        print(f"  {engine:<10} " + "  ".join(f"{k} {v}" for k, v in row.items()))


def main(argv: list[str] | None = None) -> int:
    from bench.server import scenario_setup, write_json

    args = parse_args(argv)
    scenario_setup(args.profile)
    from bench import clip
    from models import get_spec
    from models.store import import_spec

    spec = get_spec("clip", args.profile)
    import_spec(spec)  # idempotent; offline for bench and tiny (weights, then the ONNX graphs)
    images = clip.make_test_images()
    report: dict = {"facts": {"profile": args.profile, "cpu_count": os.cpu_count(), "engines": args.engines,
                              "modes": args.modes, "lone": args.lone, "requests": args.requests,
                              "batch": f"{args.batch_requests} x {args.batch_images} images",
                              "load_average_before": [round(v, 2) for v in os.getloadavg()]},
                    "results": {}}
    for engine in args.engines:
        report["results"][engine] = bench_engine(engine, args, images, spec.output_dim)
    report["facts"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    report["summary"] = summary(report["results"])
    print_report(report)
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
