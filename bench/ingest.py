"""Ingest through the API: vectors computed elsewhere (index_vectors) against images embedded by
the server (index_images), on one server, on this machine.

    python -m bench --scenario ingest                          # 1M vectors, bench profile
    python -m bench --scenario ingest --n 20000 --images 64 --profile tiny   # a smoke run

A `bentoml serve .` with only the clip model is started here (a fresh data directory, or
--search-url for PostgreSQL), then:
- index_vectors: --n random 512-d vectors, --batch (1000) per call, --concurrency calls at
  once, as JSON (what `image-embed import-library` sends); vectors/s over the whole run, each
  call durable when it answers. The request bodies are built from pre-serialized vector
  blocks so that the client's JSON encoding does not limit what is measured;
- index_images: --images JPEG photos (1280 x 720), 16 per call, 4 calls at once (what
  `image-embed index-folder` sends); images/s.
The ratio says how much faster bringing in existing vectors is than embedding the images.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


from bench.server import GRACEFUL_SHUTDOWN_S, free_port, server_env, server_process

BLOCKS = 8  # distinct vector blocks, reused under different keys


def vector_blocks(batch: int, dim: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [json.dumps(np.round(rng.standard_normal((batch, dim)), 6).tolist()).encode() for _ in range(BLOCKS)]


async def post_all(url: str, bodies, concurrency: int, bar) -> tuple[int, float]:
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    done = 0

    async def worker(http) -> None:
        nonlocal done
        while not queue.empty():
            count, path, kwargs = queue.get_nowait()
            resp = await http.post(path, **kwargs)
            if resp.status_code != 200:
                raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:300]}")
            done += count
            bar.update(count)

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return done, time.perf_counter() - started


def vector_bodies(n: int, batch: int, dim: int):
    blocks = vector_blocks(batch, dim)
    for b, start in enumerate(range(0, n, batch)):
        m = min(batch, n - start)
        keys = json.dumps([f"lib/{i:09d}.jpg" for i in range(start, start + m)]).encode()
        vectors = blocks[b % BLOCKS] if m == batch else json.dumps(np.ones((m, dim)).tolist()).encode()
        body = b'{"index": "vectors", "keys": ' + keys + b', "vectors": ' + vectors + b"}"
        yield m, "/index_vectors", {"content": body, "headers": {"content-type": "application/json"}}


def image_bodies(n: int, batch: int = 16):
    import skimage.data
    from PIL import Image

    photos = [Image.fromarray(getattr(skimage.data, name)()).convert("RGB").resize((1280, 720)) for name in ("astronaut", "chelsea", "coffee")]
    encoded = []
    for photo in photos:
        buf = io.BytesIO()
        photo.save(buf, format="JPEG", quality=90)
        encoded.append(buf.getvalue())
    for start in range(0, n, batch):
        m = min(batch, n - start)
        files = [("images", (f"{i}.jpg", encoded[i % len(encoded)], "image/jpeg")) for i in range(start, start + m)]
        keys = json.dumps([f"img/{i:09d}.jpg" for i in range(start, start + m)])
        yield m, "/index_images", {"files": files, "data": {"index": "images", "keys": keys}}


def measure(url: str, args) -> dict:
    from tqdm import tqdm

    with tqdm(total=args.images, unit="img", desc="index_images") as bar:
        done, took = asyncio.run(post_all(url, image_bodies(args.images), 4, bar))
    images = {"images": done, "seconds": round(took, 1), "images_per_s": round(done / took, 1)}
    with tqdm(total=args.n, unit="vec", desc="index_vectors") as bar:
        done, took = asyncio.run(post_all(url, vector_bodies(args.n, args.batch, 512), args.concurrency, bar))
    vectors = {"vectors": done, "seconds": round(took, 1), "vectors_per_s": round(done / took)}
    return {"index_images": images, "index_vectors": vectors, "ratio": round(vectors["vectors_per_s"] / images["images_per_s"], 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=("bench", "tiny", "default"), default="bench")
    p.add_argument("--n", type=int, default=1_000_000, help="vectors sent to index_vectors (default %(default)s)")
    p.add_argument("--batch", type=int, default=1000, help="vectors per call (at most 1000)")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--images", type=int, default=256, help="images sent to index_images (default %(default)s)")
    p.add_argument("--search-url", help="postgresql://...: the indexes in PostgreSQL instead of a fresh data directory")
    p.add_argument("--url", help="a server already running (its data is kept: the indexes 'vectors' and 'images')")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.url:
        report = measure(args.url.rstrip("/"), args)
    else:
        import os

        os.environ["IMAGE_EMBED_PROFILE"] = args.profile
        from models import get_spec
        from models.store import import_spec

        import_spec(get_spec("clip", args.profile))  # the only model this server serves
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**server_env(args.profile, str(Path(__file__).resolve().parent.parent / "configuration.yaml")),
               "IMAGE_EMBED_DATA_DIR": tempfile.mkdtemp(prefix="bench-ingest-")}
        if args.search_url:
            env["IMAGE_EMBED_SEARCH_URL"] = args.search_url
        cmd = [str(Path(sys.executable).parent / "bentoml"), "serve", ".", "--arg", "models=clip", "--host", "127.0.0.1",
               "--port", str(port), "--timeout-graceful-shutdown", str(GRACEFUL_SHUTDOWN_S)]
        with server_process("ingest", cmd, env, f"{url}/readyz"):
            report = measure(url, args)
    report.update({"profile": args.profile, "batch": args.batch, "concurrency": args.concurrency,
                   "backend": "postgresql" if args.search_url else "sqlite"})
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
