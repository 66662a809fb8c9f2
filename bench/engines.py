"""Measure the engines side by side in one run: torch, ONNX Runtime fp32, ONNX Runtime int8.

    python -m bench --scenario engines                    # bench profile (real sizes)
    python -m bench --scenario engines --profile tiny --requests 16 --seconds 0.2   # a smoke run
    python -m bench --scenario engines --skip-served --json engines.json

in-process   each model's `encode_images` as the runner calls it (models.store.load with
             IMAGE_EMBED_ENGINE / IMAGE_EMBED_CPU_PRECISION set per engine) on preprocessed
             uint8 batches: ViT-B/32 at --batch-sizes, DINOv2 at 1 and 8, InternViT at 2.
             `images/s` = batch size / median forward time (at least --seconds per size); the
             engines are measured in turn, --rounds times, and the best round counts.
parity       on the same weights, the test images (3 photographs, 5 noise images): ONNX fp32
             against torch (max abs diff, min cosine), int8 against ONNX fp32 (min cosine).
served       one `bentoml serve .` per engine with models=clip, loaded with --requests POSTs
             of JPEGs to /encode_image (as bench/clip.py does; `images/s` counts 200s):
               test    the test JPEGs (3 photographs up to 600 x 400, noise up to 1920 x 1080)
                       at each --concurrency;
               224px   the same images at 224 x 224, at the highest --concurrency: decoding
                       and resizing nearly free, so what is left is HTTP and the runner;
               photos  the 3 photographs at 1920 x 1080 and 4000 x 3000, compressible like
                       real photos, at the highest --concurrency.
             And (unless --skip-draft) one more server per engine with
             IMAGE_EMBED_JPEG_DRAFT=1, loaded with `test` and `photos`. All servers are up
             together and each load runs on each in turn (a slow spell of the machine falls
             on all alike; idle servers use no CPU). Each load also reports
             CPU milliseconds per image of the gateway, the runner and the load generator, and
             the runner's mean batch and model time per image (bench/served_cpu.py). The
             loads run --rounds times over; the best round counts.
gateway      decode + resize of the test JPEGs in the gateway's code (ms per image): the work
             the served path adds before a runner sees an image.
jpeg draft   on the test and the photo images, decode + resize exact and with
             IMAGE_EMBED_JPEG_DRAFT=1 (ms per image), their pixels' mean difference, and the
             lowest cosine between CLIP's embeddings (ONNX fp32) of the two.

Ratios: served images/s of each server over torch's (with the same decoding) on the same
images at the same client count; served (best) over in-process (best) per engine, on the test
and the 224 px images. Everything runs on this machine and competes for its CPU: compare
numbers of one run. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ENGINES = {  # name -> the settings it runs with
    "torch": {"IMAGE_EMBED_ENGINE": "torch"},
    "onnx-fp32": {"IMAGE_EMBED_ENGINE": "onnx", "IMAGE_EMBED_CPU_PRECISION": "fp32"},
    "onnx-int8": {"IMAGE_EMBED_ENGINE": "onnx", "IMAGE_EMBED_CPU_PRECISION": "int8"},
}
PHOTO_SIZES = ((1920, 1080), (4000, 3000))  # the served "photos" set: each photograph at these sizes
OTHER_MODELS = {"dinov2": [1, 8], "internvit": [2]}  # in-process only, at these batch sizes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("bench", "tiny", "default"), default="bench", help="model profile (default: bench)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32], help="ViT-B/32 in-process batch sizes")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="served client counts (default: 1 8 32)")
    p.add_argument("--requests", type=int, default=200, help="requests per served level (default: 200)")
    p.add_argument("--seconds", type=float, default=2.0, help="in-process: time each batch size this long (default: 2)")
    p.add_argument("--rounds", type=int, default=2, help="measure the engines in turn this often (in-process and served); the best counts")
    p.add_argument("--models", default="clip,dinov2,internvit", help="in-process models (default: clip,dinov2,internvit)")
    p.add_argument("--skip-served", action="store_true", help="in-process and parity only")
    p.add_argument("--skip-draft", action="store_true", help="no servers with IMAGE_EMBED_JPEG_DRAFT=1")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write every number to this JSON file")
    args = p.parse_args(argv)
    if min(args.batch_sizes) < 1 or min(args.concurrency) < 1 or min(args.requests, args.rounds) < 1 or args.seconds <= 0:
        p.error("--batch-sizes, --concurrency, --requests, --rounds and --seconds must be positive")
    return args


@contextlib.contextmanager
def engine_env(name: str):
    """The process environment of engine `name` (load() reads the settings on every call)."""
    saved = {k: os.environ.get(k) for k in ENGINES["onnx-fp32"]}
    os.environ.update(ENGINES[name])
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def time_forward(model, batch, seconds: float) -> float:
    """images/s of one batch size: batch size / median forward time over `seconds`."""
    import numpy as np

    model.encode_images(batch)  # warm-up: thread pools, allocators
    times, started = [], time.perf_counter()
    while len(times) < 2 or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        model.encode_images(batch)
        times.append(time.perf_counter() - t0)
    return len(batch) / float(np.median(times))


def bench_model(spec, pixels, batch_sizes: list[int], seconds: float, rounds: int = 2) -> tuple[dict, dict]:
    """In-process speed per engine and batch size, and the parity of the engines' outputs.

    The three engines are loaded together and measured in turn, `rounds` times over, so a
    slow spell of a shared machine does not fall on one engine only; the best round counts."""
    import numpy as np

    from models.device import select_device
    from models.store import load

    device = select_device()
    models = {}
    for name in ENGINES:
        with engine_env(name):
            models[name] = load(spec, device)
    outputs = {name: model.encode_images(pixels) for name, model in models.items()}
    rates: dict = {name: {b: [] for b in batch_sizes} for name in ENGINES}
    for _ in range(rounds):
        for b in batch_sizes:
            batch = pixels[np.arange(b) % len(pixels)]
            for name, model in models.items():
                rates[name][b].append(time_forward(model, batch, seconds))
    del models
    gc.collect()
    speed = {name: [{"batch_size": b, "images_per_s": max(r), "rounds": [round(v, 2) for v in r]}
                    for b, r in per.items()] for name, per in rates.items()}
    torch_out, fp32, int8 = outputs["torch"], outputs["onnx-fp32"], outputs["onnx-int8"]
    parity = {
        "fp32_vs_torch_max_abs_diff": float(np.abs(fp32 - torch_out).max()),
        "fp32_vs_torch_min_cosine": float((fp32 * torch_out).sum(1).min()),
        "int8_vs_fp32_min_cosine": float((int8 * fp32).sum(1).min()),
    }
    return speed, parity


def draft_effect(spec, sets: dict[str, list[bytes]]) -> dict:
    """What IMAGE_EMBED_JPEG_DRAFT=1 changes, per image set: the gateway's decode + resize time
    per image, exact and drafted, and CLIP's embeddings (ONNX fp32) of the two: mean absolute
    pixel difference and the lowest cosine."""
    import numpy as np

    from bench import clip
    from models.device import select_device
    from models.store import load

    with engine_env("onnx-fp32"):
        model = load(spec, select_device())
    out = {}
    for name in ("test", "photos"):
        exact, exact_ms = clip.decode_and_prepare(sets[name], spec)
        drafted, draft_ms = clip.decode_and_prepare(sets[name], spec, jpeg_draft=True)
        cosine = (model.encode_images(exact) * model.encode_images(drafted)).sum(1)
        out[name] = {"decode_resize_ms_exact": round(exact_ms, 2), "decode_resize_ms_draft": round(draft_ms, 2),
                     "mean_abs_pixel_diff": round(float(np.abs(exact.astype(int) - drafted).mean()), 2),
                     "min_cosine": round(float(cosine.min()), 5)}
    return out


def image_sets(images: list[bytes]) -> dict[str, list[bytes]]:
    """The served loads' images (module docstring): the test JPEGs, the same at 224 px, large photos."""
    import io

    import numpy as np
    import skimage.data
    from PIL import Image

    def jpeg(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        return buf.getvalue()

    small = [jpeg(Image.open(io.BytesIO(b)).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)) for b in images]
    photos = [jpeg(Image.fromarray(a).resize(size, Image.Resampling.BICUBIC))
              for a in (skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee())
              for size in PHOTO_SIZES]
    assert all(np.frombuffer(b[:3], np.uint8).tolist() == [255, 216, 255] for b in small + photos)
    return {"test": images, "224px": small, "photos": photos}


def server_plan(args) -> list[tuple[str, str, dict, list[tuple[str, int]]]]:
    """(server key, engine, extra environment, [(image set, clients)]) of each server to start."""
    top = max(args.concurrency)
    plan = [(name, name, {}, [("test", c) for c in args.concurrency] + [("224px", top), ("photos", top)])
            for name in ENGINES]
    if not args.skip_draft:
        plan += [(f"{name}+draft", name, {"IMAGE_EMBED_JPEG_DRAFT": "1"}, [("test", top), ("photos", top)])
                 for name in ENGINES]
    return plan


def own_homes(stack: contextlib.ExitStack, key: str) -> dict[str, str]:
    """A server's own BENTOML_HOME (its `models` linked to the shared model store) and data dir.
    Servers up together must not share a BentoML home: each one's start empties the home's
    prometheus_multiproc_dir, and /metrics would then lose or mix the others' counters."""
    import tempfile

    from bentoml._internal.configuration.containers import BentoMLContainer

    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{key}-")))
    (root / "home").mkdir()
    (root / "home" / "models").symlink_to(Path(BentoMLContainer.bentoml_home.get()) / "models")
    return {"BENTOML_HOME": str(root / "home"), "IMAGE_EMBED_DATA_DIR": str(root / "data")}


def bench_served(args, images, spec) -> dict:
    """Start every server of the plan, then run each load on each server in turn: a slow spell
    of a shared machine then falls on every server alike. An idle server costs no CPU."""
    from bench import server as bench_server
    from bench import clip
    from bench.served_cpu import measured_load

    sets = image_sets(images)
    plan = server_plan(args)
    out: dict = {}
    with contextlib.ExitStack() as stack:
        servers = {}
        for key, engine, extra, loads in plan:
            port = bench_server.free_port()
            url = f"http://127.0.0.1:{port}"
            cmd = [str(Path(sys.executable).parent / "bentoml"), "serve", ".", "--host", "127.0.0.1", "--port", str(port),
                   "--timeout-graceful-shutdown", str(bench_server.GRACEFUL_SHUTDOWN_S)]
            server_env = {**bench_server.server_env(args.profile, str(ROOT / "configuration.yaml")), **ENGINES[engine],
                          **extra, "IMAGE_EMBED_MODELS": "clip", **own_homes(stack, key)}
            family = stack.enter_context(bench_server.server_process(f"served-{key}", cmd, server_env, f"{url}/readyz"))
            health = clip.get_json(f"{url}/health").get("models", {}).get("clip", {})
            servers[key] = (url, family)
            out[key] = {"engine": {k: health.get(k) for k in ("engine", "precision", "threads")},
                        "jpeg_draft": bool(extra), "loads": []}
        order = list(dict.fromkeys(load for *_, loads in plan for load in loads))
        runs: dict = {}
        for _ in range(args.rounds):
            for name, clients in order:
                for key, _, _, loads in plan:
                    if (name, clients) in loads:
                        url, family = servers[key]
                        row = measured_load(url, family, sets[name], clients, args.requests, spec.output_dim,
                                            f"{key} {name}")
                        runs.setdefault((key, name, clients), []).append(row)
    for (key, name, clients), rows in runs.items():  # the best round counts, as in-process
        best = max(rows, key=lambda r: r["images_per_s"])
        out[key]["loads"].append({"images": name, **best, "rounds": [round(r["images_per_s"], 1) for r in rows]})
    return out


def ratios(report: dict) -> dict:
    out: dict = {}
    best_in = {n: max(r["images_per_s"] for r in rows) for n, rows in report["in_process"]["clip"].items()}
    served = report.get("served")
    if served:
        rate = {key: {(r["images"], r["concurrency"]): r["images_per_s"] for r in s["loads"]} for key, s in served.items()}
        out["served_over_torch_served"] = {}
        for key, per in rate.items():
            base = rate.get("torch+draft" if key.endswith("+draft") else "torch", {})
            out["served_over_torch_served"][key] = {f"{i} x{c}": v / base[i, c] for (i, c), v in per.items() if base.get((i, c))}
        out["served_over_in_process"] = {
            key: {i: max(v for (name, _), v in per.items() if name == i) / best_in[key.split("+")[0]]
                  for i in ("test", "224px") if any(name == i for name, _ in per)}
            for key, per in rate.items()
        }
    out["in_process_best_over_torch"] = {n: v / best_in["torch"] for n, v in best_in.items()}
    return out


def print_report(report: dict) -> None:
    print("\n== machine\n  " + "\n  ".join(f"{k:20s} {v}" for k, v in report["facts"].items()))
    print("\n== in-process encode_images, images/s (median forward)")
    for key, per_engine in report["in_process"].items():
        sizes = [r["batch_size"] for r in next(iter(per_engine.values()))]
        print(f"  {key:<10} {'batch':>6} " + " ".join(f"{n:>10}" for n in per_engine))
        for i, size in enumerate(sizes):
            print(f"  {'':<10} {size:>6} " + " ".join(f"{rows[i]['images_per_s']:>10.3g}" for rows in per_engine.values()))
    print("\n== parity on the same weights (3 photographs, 5 noise images)")
    for key, p in report["parity"].items():
        print(f"  {key:<10} fp32-torch max|d| {p['fp32_vs_torch_max_abs_diff']:.2e} cos {p['fp32_vs_torch_min_cosine']:.6f}"
              f"   int8-fp32 cos {p['int8_vs_fp32_min_cosine']:.5f}")
    print("\n== IMAGE_EMBED_JPEG_DRAFT=1 against the exact decode (CLIP, ONNX fp32)")
    for name, d in report.get("jpeg_draft", {}).items():
        print(f"  {name:<7} decode + resize {d['decode_resize_ms_exact']} -> {d['decode_resize_ms_draft']} ms/image;"
              f" pixels differ by {d['mean_abs_pixel_diff']} on average; embedding cosine >= {d['min_cosine']}")
    if report.get("served"):
        print("\n== served POST /encode_image (models=clip): images/s (p50 ms) statuses;"
              " CPU ms per image: gateway / runner / load generator; runner: mean batch, model ms per image")
        for key, s in report["served"].items():
            for r in s["loads"]:
                cpu = r["cpu_ms_per_image"]
                print(f"  {key:<16} {r['images']:<7} x{r['concurrency']:<3} {r['images_per_s']:6.1f} ({r['p50_ms']:6.0f})"
                      f" {' '.join(f'{k}:{v}' for k, v in r['statuses'].items()):<10}"
                      f" cpu {cpu['gateway']:5.1f} / {cpu['runner']:5.1f} / {cpu['load_generator']:4.1f}"
                      f"  batch {r['mean_batch']}, model {r['model_ms_per_image']} ms")
    rat = report["ratios"]
    print("\n== ratios")
    print("  in-process best / torch's   " + "  ".join(f"{n} {v:.2f}" for n, v in rat["in_process_best_over_torch"].items()))
    for name, per in rat.get("served_over_torch_served", {}).items():
        print(f"  served / torch served       {name:<16} " + "  ".join(f"{c}: {v:.2f}" for c, v in per.items()))
    for name, per in rat.get("served_over_in_process", {}).items():
        print(f"  served / in-process (best)  {name:<16} " + "  ".join(f"{i}: {v:.2f}" for i, v in per.items()))

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["IMAGE_EMBED_PROFILE"] = args.profile
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.getLogger().setLevel(logging.ERROR)
    from bench import clip
    from models import get_spec
    from models.onnx_engine import runner_threads
    from models.store import import_spec

    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    if "clip" not in keys:
        keys.insert(0, "clip")
    images = clip.make_test_images()
    report: dict = {"facts": {"profile": args.profile, "cpu_count": os.cpu_count(), "threads": runner_threads(),
                              "load_average_before": [round(v, 2) for v in os.getloadavg()]},
                    "in_process": {}, "parity": {}}
    for key in keys:
        spec = get_spec(key, args.profile)
        started = time.monotonic()
        created = import_spec(spec).created
        report["facts"][f"{key}_import_s"] = round(time.monotonic() - started, 1) if created else "present"
        pixels, prep_ms = clip.decode_and_prepare(images, spec)
        report["facts"][f"gateway_decode_resize_ms_per_image_{key}"] = round(prep_ms, 2)
        sizes = args.batch_sizes if key == "clip" else OTHER_MODELS.get(key, [1])
        print(f"in-process {key} ({spec.display_name}) at batch sizes {sizes}", flush=True)
        report["in_process"][key], report["parity"][key] = bench_model(spec, pixels, sizes, args.seconds, args.rounds)
    report["jpeg_draft"] = draft_effect(get_spec("clip", args.profile), image_sets(images))
    if not args.skip_served:
        report["served"] = bench_served(args, images, get_spec("clip", args.profile))
    report["facts"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    report["ratios"] = ratios(report)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
