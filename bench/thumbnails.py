"""Thumbnail benchmark: what storing a thumbnail per item costs at index time, and how fast
the UI gets one back, with IMAGE_EMBED_THUMBNAILS on and off compared in one run.

    python -m bench --scenario thumbnails
    python -m bench --scenario thumbnails --search-url postgresql://...   # PostgreSQL too

Measured:
- prepare: per image, the gateway's work in the indexing path (decode, resize for CLIP),
  without and with making the WebP thumbnail from the same decoded image (the median of
  --repeats), and the thumbnail's size, for photographs of several sizes and for noise
  (the worst case for WebP);
- store: items/s of `upsert` in batches of 64 (one durable transaction each) without and with
  thumbnails, and the p50/p99 latency of reading one item's thumbnail back (what
  GET /thumbnail/{index}/{key} asks the index runner), on SQLite, and on PostgreSQL with
  --search-url (its tables are dropped afterwards).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np


SIZES = ((640, 480), (1280, 720), (1920, 1080), (4000, 3000))
BATCH = 64


def photo(size: tuple[int, int]):
    import skimage.data
    from PIL import Image

    return Image.fromarray(skimage.data.astronaut()).resize(size, Image.Resampling.BICUBIC)


def jpeg(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def bench_prepare(repeats: int, thumbnail_px: int) -> list[dict]:
    from PIL import Image

    from gateway.thumbnails import make_thumbnail
    from intake.decode import decode_image
    from config.sections import IntakeSettings
    from models import get_spec
    from models.preprocess import prepare_images

    spec, intake = get_spec("clip"), IntakeSettings()
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8))
    cases = [(f"photo {w}x{h}", jpeg(photo((w, h)))) for w, h in SIZES] + [("noise 640x480", jpeg(noise))]
    rows = []
    for name, data in cases:
        def plain():
            prepare_images([decode_image(data, intake).image], spec)

        def with_thumbnail():
            image = decode_image(data, intake).image
            prepare_images([image], spec)
            return make_thumbnail(image, thumbnail_px)

        off = median_ms(plain, repeats)
        on = median_ms(with_thumbnail, repeats)
        rows.append({"image": name, "off_ms": off, "on_ms": on, "extra_ms": on - off, "thumbnail_bytes": len(with_thumbnail())})
    return rows


def median_ms(func, repeats: int) -> float:
    func()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_store(place: str, n: int, thumbnail_px: int, reads: int) -> dict:
    from gateway.thumbnails import make_thumbnail
    from search.manifest import Binding
    from search.backend import indexes_at

    thumbs = [make_thumbnail(photo((640 + 8 * i, 480)), thumbnail_px) for i in range(8)]
    rng = np.random.default_rng(1)
    catalog = indexes_at(place)
    result = {"backend": catalog.backend, "items": n}
    try:
        for mode in ("off", "on"):
            name = f"bench-thumbs-{mode}-{uuid.uuid4().hex[:6]}"
            ix = catalog.get(name, Binding(model="bench", dim=512), create=True)
            start = time.perf_counter()
            for i in range(0, n, BATCH):
                keys = [f"k{j}" for j in range(i, min(n, i + BATCH))]
                vectors = rng.standard_normal((len(keys), 512)).astype(np.float32)
                ix.upsert(keys, vectors, thumbnails=[thumbs[j % len(thumbs)] for j in range(len(keys))] if mode == "on" else None)
            result[f"upsert_{mode}_items_per_s"] = n / (time.perf_counter() - start)
            if mode == "on":
                lat = []
                for j in rng.integers(0, n, reads):
                    t0 = time.perf_counter()
                    assert ix.thumbnail(f"k{j}") is not None
                    lat.append((time.perf_counter() - t0) * 1000)
                result["read_p50_ms"] = float(np.percentile(lat, 50))
                result["read_p99_ms"] = float(np.percentile(lat, 99))
                result["bytes_on_disk_on"] = ix.stats().get("bytes_on_disk")
            else:
                result["bytes_on_disk_off"] = ix.stats().get("bytes_on_disk")
            catalog.drop(name)
    finally:
        catalog.close()
    return result


def main(argv: list[str] | None = None) -> int:
    summary, _, details = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=summary, epilog=details, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=15, help="timings per image and mode (the median is reported)")
    p.add_argument("--items", type=int, default=2048, help="items upserted per back end and mode")
    p.add_argument("--reads", type=int, default=500, help="thumbnails read back")
    p.add_argument("--size", type=int, default=256, help="the thumbnail size (IMAGE_EMBED_THUMBNAIL_SIZE)")
    p.add_argument("--search-url", default=None, help="a postgresql:// URL: measure PostgreSQL too")
    p.add_argument("--json", default=None, help="write the results there")
    args = p.parse_args(argv)

    report = {"prepare": bench_prepare(args.repeats, args.size), "store": []}
    print(f"{'image':<18} {'off ms':>8} {'on ms':>8} {'extra ms':>9} {'thumb KiB':>10}")
    for r in report["prepare"]:
        print(f"{r['image']:<18} {r['off_ms']:>8.1f} {r['on_ms']:>8.1f} {r['extra_ms']:>9.1f} {r['thumbnail_bytes'] / 1024:>10.1f}")
    places = [tempfile.mkdtemp(prefix="bench-thumbs-")] + ([args.search_url] if args.search_url else [])
    print(f"\n{'back end':<11} {'items':>6} {'upsert off/s':>13} {'upsert on/s':>12} {'read p50 ms':>12} {'read p99 ms':>12}")
    for place in places:
        r = bench_store(place, args.items, args.size, args.reads)
        report["store"].append(r)
        print(f"{r['backend']:<11} {r['items']:>6} {r['upsert_off_items_per_s']:>13.0f} {r['upsert_on_items_per_s']:>12.0f} "
              f"{r['read_p50_ms']:>12.2f} {r['read_p99_ms']:>12.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
