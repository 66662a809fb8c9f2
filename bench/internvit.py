"""Measure InternViT-300M throughput: the simple and the three-level extractor.

    python -m bench --scenario internvit                        # bench profile: the real architecture, random weights
    python -m bench --scenario internvit --profile tiny --images 8          # a quick smoke run
    python -m bench --scenario internvit --url http://127.0.0.1:3000       # also a server already up
    python -m bench --scenario internvit --json internvit.json

in-process   the gateway's preprocessing (PIL: `prepare_images` for simple, `prepare_views` for
             three-level) and `InternVitModel.encode_images` on batches of at most
             --batch-size images/views (default: the spec's max_batch_size on this device),
             as the runner sees them. `images/s` = images / (preprocessing + forward seconds),
             best of --repeats; `views/s` counts each view (three-level: 1 + 1 + tiles per image);
             `forward_s` and `prep_s` split the time.
served       with --url (loopback only): --images uploads POSTed to /encode_internvit and
             /encode_internvit_levels by --concurrency clients; `images/s` = 200 responses /
             wall time, `statuses` counts every response.

The profile's InternViT is imported into the BentoML model store first (offline for bench and
tiny; set BENTOML_HOME to choose the store). InternViT-300M at 448 px costs seconds per view on
a small CPU: keep --images small there. Images are scikit-image's photographs at several sizes.
The load averages before and after are reported: on a shared machine, compare runs only at
similar load.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("bench", "tiny", "default"), default="bench", help="model profile (default: bench)")
    p.add_argument("--images", type=int, default=2, help="images per measurement (default: 2)")
    p.add_argument("--repeats", type=int, default=1, help="measurements per extractor; the best counts (default: 1)")
    p.add_argument("--batch-size", type=int, help="images/views per forward (default: the spec's limit)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="sets IMAGE_EMBED_DEVICE")
    p.add_argument("--url", help="also load this running server (loopback only)")
    p.add_argument("--concurrency", type=int, default=4, help="clients for --url (default: 4)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.images < 1 or args.repeats < 1 or (args.batch_size is not None and args.batch_size < 1):
        p.error("--images, --repeats and --batch-size must be >= 1")
    if args.url and urlsplit(args.url).hostname not in LOOPBACK:
        p.error("--url must point to this machine (127.0.0.1, localhost or ::1)")
    return args


def photos(n: int):
    """n RGB photographs of different sizes and shapes."""
    import skimage.data
    from PIL import Image

    sources = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    sizes = [(512, 512), (640, 480), (1280, 720), (480, 800)]
    return [Image.fromarray(sources[i % 4]).convert("RGB").resize(sizes[i % 4]) for i in range(n)]


def _timed_forward(model, batch, batch_size: int) -> float:
    started = time.perf_counter()
    for i in range(0, len(batch), batch_size):
        model.encode_images(batch[i : i + batch_size])
    return time.perf_counter() - started


def measure(model, spec, images, batch_size: int, repeats: int) -> dict:
    import numpy as np

    from models.preprocess import prepare_images
    from config.settings import load_settings
    from models.views import prepare_views

    levels = load_settings()
    results = {}
    for name in ("simple", "three_level"):
        best = None
        for _ in range(repeats):
            started = time.perf_counter()
            if name == "simple":
                batch = prepare_images(images, spec)
            else:
                batch = np.concatenate([prepare_views(img, spec, levels)[0] for img in images])
            prep = time.perf_counter() - started
            forward = _timed_forward(model, batch, batch_size)
            run = {"prep_s": prep, "forward_s": forward, "views": len(batch)}
            if best is None or prep + forward < best["prep_s"] + best["forward_s"]:
                best = run
        total = best["prep_s"] + best["forward_s"]
        results[name] = {
            "images": len(images),
            "views": best["views"],
            "batch_size": batch_size,
            "prep_s": round(best["prep_s"], 3),
            "forward_s": round(best["forward_s"], 3),
            "images_per_s": round(len(images) / total, 4),
            "views_per_s": round(best["views"] / total, 4),
        }
    return results


def served(url: str, images, concurrency: int) -> dict:
    import httpx

    payloads = []
    for img in images:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        payloads.append(buf.getvalue())

    async def load(route: str) -> dict:
        statuses: Counter = Counter()
        queue = iter(range(len(payloads)))

        async def client_loop(client: httpx.AsyncClient) -> None:
            for i in queue:
                try:
                    resp = await client.post(route, files={"image": (f"{i}.jpg", payloads[i], "image/jpeg")})
                    statuses[resp.status_code] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            started = time.perf_counter()
            await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
            wall = time.perf_counter() - started
        return {"images_per_s": round(statuses[200] / wall, 4), "wall_s": round(wall, 3), "statuses": dict(statuses)}

    return {
        "concurrency": concurrency,
        "simple": asyncio.run(load("/encode_internvit")),
        "three_level": asyncio.run(load("/encode_internvit_levels")),
    }


def run(args: argparse.Namespace) -> dict:
    """Import the profile's InternViT, measure both extractors in-process (and served with --url)."""
    os.environ["IMAGE_EMBED_PROFILE"] = args.profile
    if args.device:
        os.environ["IMAGE_EMBED_DEVICE"] = args.device
    import torch

    from models import get_spec
    from models.device import select_device
    from models.store import import_spec, model_dir
    from models.timm_vit import InternVitModel
    from config.settings import load_settings

    spec = get_spec("internvit", args.profile)
    import_spec(spec)
    device = select_device()
    batch_size = args.batch_size or spec.batch_limits("encode_images", device.kind).max_batch_size
    started = time.perf_counter()
    model = InternVitModel(spec, model_dir(spec), device)
    load_s = time.perf_counter() - started
    images = photos(args.images)
    model.encode_images(_warmup(spec))
    result = {
        "model": spec.display_name,
        "arch": spec.arch,
        "profile": spec.profile,
        "weights": spec.pretrained or "random",
        "device": device.name,
        "dtype": device.dtype,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "levels": load_settings().describe_levels(),
        "load_s": round(load_s, 2),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "in_process": measure(model, spec, images, batch_size, args.repeats),
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }
    if args.url:
        result["served"] = served(args.url, images, args.concurrency)
    return result


def _warmup(spec):
    import numpy as np

    return np.zeros((1, spec.input_size, spec.input_size, 3), dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
