"""Benchmark the analyze API: four tasks on one image, many concurrent clients.

    python -m bench --scenario analyze                                # bench profile, real architectures
    python -m bench --scenario analyze --profile tiny --requests 20   # a quick smoke run
    python -m bench --scenario analyze --url http://127.0.0.1:3000    # a server already up
    python -m bench --scenario analyze --json analyze.json

Each request is POST /analyze with the astronaut photograph (512 x 512 JPEG, one face) and
four tasks: detect_bounding_box (prominent_person), embed_clip_vit_b_32 (whole_image),
embed_clip_vit_b_32 (prominent_face, face_context=whole_image: MTCNN's real weights find the
face in every profile, so the crop is always embedded) and describe_image (max_length 20).
That is one Faster R-CNN, one MTCNN, two CLIP and one BLIP call per request, batched across
requests by the runners.

For each --concurrency level, --requests requests are sent by that many clients:
`requests/s` = successful (200) responses / wall time; `complete/s` = those whose four tasks
all succeeded (a task fails alone, e.g. when a runner sheds load with 503 or times out, and
its request is still a 200); `p50`/`p99`/`mean` = latency of the 200s as the client sees it
(queueing included); `statuses` counts responses by HTTP status (and client-side errors by
exception name); `tasks` counts task results by status, `task_errors` the commonest messages
(a random-weight profile may not find a person: the person falls back to the whole image,
still a success). Unless --url is given, the profile's models are imported
(offline for bench and tiny) and `bentoml serve .` is started here and always stopped.
With random weights (bench) BLIP rarely emits its end token, so every caption runs to
max_length: the caption cost is the worst case for that length.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

READY_TIMEOUT_S = 900.0  # bench: loading BLIP, DINOv3-L and Faster R-CNN on a small CPU takes minutes
TASKS = [
    {"operation_id": "person", "type": "detect_bounding_box", "params": {"target": "prominent_person"}},
    {"operation_id": "clip_whole", "type": "embed_clip_vit_b_32", "params": {"target": "whole_image"}},
    {
        "operation_id": "clip_face",
        "type": "embed_clip_vit_b_32",
        "params": {"target": "prominent_face", "face_context": "whole_image"},
    },
    {"operation_id": "caption", "type": "describe_image", "params": {"max_length": 20}},
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("bench", "tiny", "default"), default="bench", help="model profile (default: bench)")
    p.add_argument("--url", help="benchmark this running server instead of starting one")
    p.add_argument("--requests", type=int, default=16, help="requests per concurrency level (default: 16)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8], help="client counts (default: 1 4 8)")
    p.add_argument("--warmup", type=int, default=2, help="requests before measuring (default: 2)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per request (default: 600)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.requests < 1 or min(args.concurrency) < 1:
        p.error("--requests and --concurrency must be >= 1")
    return args


def image_bytes() -> bytes:
    import skimage.data
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


# --- a server of our own -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def import_models(profile: str) -> None:
    os.environ["IMAGE_EMBED_PROFILE"] = profile
    from models import list_models
    from models.store import import_spec

    for spec in list_models(profile):
        started = time.monotonic()
        if import_spec(spec).created:
            print(f"  imported {spec.store_tag} in {time.monotonic() - started:.0f} s", file=sys.stderr)


def start_server(profile: str) -> tuple[subprocess.Popen, str, Path]:
    import httpx

    port = free_port()
    log = Path(tempfile.mkstemp(prefix="bench-analyze-", suffix=".log")[1])
    env = {**os.environ, "IMAGE_EMBED_PROFILE": profile, "BENTOML_CONFIG": str(ROOT / "configuration.yaml")}
    bentoml = str(Path(sys.executable).parent / "bentoml")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [bentoml, "serve", ".", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {proc.returncode}; log: {log}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop_server(proc)
    raise RuntimeError(f"bentoml serve was not ready after {READY_TIMEOUT_S:.0f} s; log: {log}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- load ----------------------------------------------------------------------------------


async def load(url: str, data: bytes, requests: int, concurrency: int, timeout: float) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    tasks: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    complete = 0
    remaining = iter(range(requests))
    form = {"tasks": json.dumps(TASKS)}

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal complete
        for _ in remaining:
            started = time.perf_counter()
            try:
                resp = await client.post("/analyze", files={"image": ("astronaut.jpg", data, "image/jpeg")}, data=form)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
                continue
            statuses[str(resp.status_code)] += 1
            if resp.status_code == 200:
                latencies.append(time.perf_counter() - started)
                results = resp.json()["results"]
                complete += all(r["status"] == "success" for r in results.values())
                for oid, r in results.items():
                    tasks[f"{oid}:{r['status']}"] += 1
                    if r["error_message"]:
                        errors[f"{oid}: {r['error_message'][:100]}"] += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": requests,
        "ok": len(latencies),
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 3),
        "complete": complete,  # 200s whose four tasks all succeeded
        "complete_per_s": round(complete / wall, 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        "mean_ms": round(float(ms.mean()), 1) if len(ms) else None,
        "statuses": dict(statuses),
        "tasks": dict(sorted(tasks.items())),
        "task_errors": dict(errors.most_common(5)),
    }


def run(args: argparse.Namespace) -> dict:
    """Measure every concurrency level; returns the results (also printed by main)."""
    import httpx

    data = image_bytes()
    proc = log = None
    url = args.url
    try:
        if url is None:
            import_models(args.profile)
            proc, url, log = start_server(args.profile)
        health = httpx.get(f"{url}/health", timeout=30).json()
        if args.warmup:
            asyncio.run(load(url, data, args.warmup, 1, args.timeout))
        levels = [asyncio.run(load(url, data, args.requests, c, args.timeout)) for c in args.concurrency]
    finally:
        if proc is not None:
            stop_server(proc)
    return {
        "scenario": "analyze: 4 tasks on one 512x512 JPEG (person bbox, CLIP whole, CLIP face crop, caption)",
        "server": "started here" if args.url is None else args.url,
        "profile": health.get("profile"),
        "device": health.get("device"),
        "models": {k: v.get("store_tag", v.get("key")) for k, v in health.get("models", {}).items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "tasks": TASKS,
        "levels": levels,
        "server_log": str(log) if log else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(f"analyze benchmark: profile {result['profile']}, device {result['device']}, {result['machine']['cpus']} CPUs")
    print(f"{'clients':>7} {'ok/sent':>8} {'req/s':>7} {'complete/s':>10} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for lv in result["levels"]:
        print(f"{lv['concurrency']:>7} {lv['ok']:>4}/{lv['requests']:<3} {lv['requests_per_s']:>7.3f} "
              f"{lv['complete_per_s']:>10.3f} {lv['p50_ms'] or 0:>8.0f} {lv['p99_ms'] or 0:>8.0f}  {lv['statuses']}")
        for message, n in lv["task_errors"].items():
            print(f"{'':>9}{n} x {message}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = all(lv["complete"] == lv["requests"] for lv in result["levels"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
