"""Caption every image in a folder through the running server: `name.txt` beside `name.jpg`.

    image-embed caption-folder /path/to/images
    image-embed caption-folder /path/to/images --force --concurrency 8 --max-length 40
    image-embed caption-folder /path/to/images --server http://10.0.0.5:3000

Each image is sent to the image-analysis service's POST /analyze_image_upload/ with one `describe_image` task;
several requests are in flight at once (--concurrency), so the server batches them. Images
that already have a caption file are skipped unless --force. A failing image (unreadable,
refused, a server error) does not stop the run: every failure is listed at the end and the
exit status is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from cli.arguments import tool_parser

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
ROUTE = "/analyze_image_upload/"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = tool_parser("caption-folder", __doc__)
    p.add_argument("folder", type=Path, help="folder of images (not recursive)")
    p.add_argument("--server", default="http://127.0.0.1:3000", help="server URL (default: http://127.0.0.1:3000)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing .txt captions")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (default: 4)")
    p.add_argument("--max-length", type=int, default=50, help="most tokens per caption (default: 50)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per request (default: 300)")
    args = p.parse_args(argv)
    if args.concurrency < 1:
        p.error("--concurrency must be >= 1")
    return args


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


async def caption_one(client, path: Path, max_length: int) -> str:
    """The caption of one image, or an exception saying why not."""
    tasks = [{"operation_id": "caption", "type": "describe_image", "params": {"max_length": max_length}}]
    files = {"image_file": (path.name, path.read_bytes(), "application/octet-stream")}
    resp = await client.post(ROUTE, files=files, data={"tasks_json": json.dumps(tasks)})
    if resp.status_code != 200:
        try:
            detail = resp.json().get("detail", resp.text)
        except ValueError:
            detail = resp.text
        raise RuntimeError(f"HTTP {resp.status_code}: {str(detail)[:300]}")
    result = resp.json()["results"]["caption"]
    if result["status"] != "success":
        raise RuntimeError(f"{result['status']}: {result['error_message']}")
    return result["data"]


async def run(args: argparse.Namespace) -> tuple[int, int, dict[Path, str]]:
    """(captioned, skipped, failures)."""
    import httpx
    from tqdm import tqdm

    images = images_in(args.folder)
    todo = [p for p in images if args.force or not p.with_suffix(".txt").exists()]
    skipped = len(images) - len(todo)
    failures: dict[Path, str] = {}
    done = 0
    limit = asyncio.Semaphore(args.concurrency)
    bar = tqdm(total=len(todo), desc="captioning", unit="image")

    async def one(client, path: Path) -> None:
        nonlocal done
        async with limit:
            try:
                text = await caption_one(client, path, args.max_length)
                path.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
                done += 1
            except Exception as exc:  # reported at the end; the run goes on
                failures[path] = f"{type(exc).__name__}: {exc}" if not isinstance(exc, RuntimeError) else str(exc)
            finally:
                bar.update(1)

    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=args.server, timeout=args.timeout, limits=limits) as client:
        await asyncio.gather(*(one(client, p) for p in todo))
    bar.close()
    return done, skipped, failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    done, skipped, failures = asyncio.run(run(args))
    print(f"done: {done} captioned, {skipped} skipped, {len(failures)} failed")
    if skipped:
        print("(skipped: images that already have a .txt caption; --force redoes them)")
    for path, why in sorted(failures.items()):
        print(f"failed: {path.name}: {why}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
