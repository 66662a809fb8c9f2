"""The OpenAI-compatible route against the native one: images/s of POST /v1/embeddings and of
POST /encode_images for the same images, on one server, in one run.

    python -m bench --scenario openai                       # bench profile: ViT-B/32, random weights
    python -m bench --scenario openai --profile tiny --requests 40 --rounds 1   # a smoke run
    python -m bench --scenario openai --url http://127.0.0.1:3000 --model clip

Every request carries --batch images (JPEG photographs and noise, base64) and asks for the
same model: /encode_images as `images_base64` (JSON), /v1/embeddings as `data:image/jpeg;base64`
URIs in `input`, with encoding_format float and base64. Both decode through the same intake
and reach the runner's adaptive batching in one call per request, so they should match within
noise. The variants take turns (--rounds rounds, each --requests requests per variant from
--concurrency clients, after a warm-up); reported per variant: the median over rounds of
images/s (successful images / wall time) and the request latency p50/p99 of all rounds, and
the statuses. The server is `bentoml serve . --arg models=<--model>` started here (models
imported first), or --url. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


VARIANTS = ("encode_images", "v1_float", "v1_base64")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("bench", "tiny", "default"), default="bench")
    p.add_argument("--model", default="clip", help="the model both routes embed with (default: clip)")
    p.add_argument("--url", help="a running server instead of starting one")
    p.add_argument("--batch", type=int, default=8, help="images per request (default: 8)")
    p.add_argument("--requests", type=int, default=100, help="requests per variant and round (default: 100)")
    p.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default: 8)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, the variants taking turns (default: 3)")
    p.add_argument("--json", help="write the results there")
    return p.parse_args(argv)


def bodies(batch: int, model: str) -> dict[str, list[dict]]:
    """Per variant, request bodies over the same images (each request a different window)."""
    from bench.clip import make_test_images

    images = [base64.b64encode(data).decode() for data in make_test_images()]
    windows = [[images[(start + i) % len(images)] for i in range(batch)] for start in range(len(images))]
    uris = [[f"data:image/jpeg;base64,{b}" for b in window] for window in windows]
    return {
        "encode_images": [{"images_base64": w, "model": model} for w in windows],
        "v1_float": [{"model": model, "input": u, "encoding_format": "float"} for u in uris],
        "v1_base64": [{"model": model, "input": u, "encoding_format": "base64"} for u in uris],
    }


def embedded(variant: str, answer: dict) -> int:
    """Images embedded in one answer (failed items of /encode_images do not count)."""
    if variant == "encode_images":
        return sum(1 for r in answer["results"] if r["embedding"])
    return len(answer["data"])


async def load(url: str, variant: str, requests: list[dict], concurrency: int, n: int) -> dict:
    import httpx

    path = "/encode_images" if variant == "encode_images" else "/v1/embeddings"
    latencies, statuses, images = [], Counter(), 0
    counter = iter(range(n))

    async def client_loop(client) -> None:
        nonlocal images
        for i in counter:
            start = time.perf_counter()
            try:
                resp = await client.post(path, json=requests[i % len(requests)])
                statuses[str(resp.status_code)] += 1
                if resp.status_code == 200:
                    images += embedded(variant, resp.json())
                    latencies.append(time.perf_counter() - start)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1

    async with httpx.AsyncClient(base_url=url, timeout=180, trust_env=False) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"images_per_s": images / wall, "latencies": latencies, "statuses": statuses}


def measure(url: str, args: argparse.Namespace) -> dict:
    requests = bodies(args.batch, args.model)
    for variant in VARIANTS:  # warm-up, not counted
        asyncio.run(load(url, variant, requests[variant], args.concurrency, args.concurrency * 2))
    rounds = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        for variant in VARIANTS:
            result = asyncio.run(load(url, variant, requests[variant], args.concurrency, args.requests))
            rounds[variant].append(result)
            print(f"  round {r + 1} {variant:<14} {result['images_per_s']:8.1f} images/s", flush=True)
    report = {}
    for variant, results in rounds.items():
        latencies = sorted(x for res in results for x in res["latencies"])
        statuses = sum((res["statuses"] for res in results), Counter())
        report[variant] = {
            "images_per_s": statistics.median(res["images_per_s"] for res in results),
            "rounds_images_per_s": [res["images_per_s"] for res in results],
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None,
            "statuses": dict(statuses),
        }
    return report


def served(args: argparse.Namespace):
    """The server to measure: --url, or `bentoml serve` of --model started here."""
    from bench.server import ROOT, free_port, server_env, server_process

    subprocess.run(
        [sys.executable, "-m", "cli", "import-models", "--profile", args.profile, "--models", args.model],
        cwd=ROOT, env=server_env(args.profile), check=True,
    )
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "bentoml"), "serve", ".", "--host", "127.0.0.1", "--port", str(port),
           "--arg", f"models={args.model}"]
    env = server_env(args.profile, str(ROOT / "configuration.yaml"))
    return port, server_process("server", cmd, env, f"http://127.0.0.1:{port}/readyz")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.url:
        report = measure(args.url, args)
    else:
        port, server = served(args)
        with server:
            report = measure(f"http://127.0.0.1:{port}", args)
    print(f"\n{'variant':<14} {'images/s':>9} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for variant, r in report.items():
        print(f"{variant:<14} {r['images_per_s']:>9.1f} {r['p50_ms'] or 0:>8.0f} {r['p99_ms'] or 0:>8.0f}  {r['statuses']}")
    base = report["encode_images"]["images_per_s"]
    for variant in VARIANTS[1:]:
        print(f"{variant} / encode_images: {report[variant]['images_per_s'] / base:.3f}" if base else "")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": report}, indent=2))
    return 0 if all(set(r["statuses"]) <= {"200"} for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
