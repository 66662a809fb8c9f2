"""Index every image under a folder into a running server's search index.

    image-embed index-folder ~/Pictures --url http://localhost:3000 --index photos

Walks the folder recursively, skips what the index already holds (same key, same size and
modification time: nothing is re-embedded), sends the rest as concurrent batches through
BentoML's client (`index_images`), and shows a progress bar with images/s and ETA. Keys
are paths relative to the folder (`--key-prefix` prepends a string). Images that fail are
written to a failures file (JSON lines); `--retry-failed` sends only those again.

Ctrl-C stops cleanly: no new batches are sent, the ones in flight finish (what the server
acknowledged is durable), the failures file and a summary are written, and a rerun
continues where this one stopped. A second Ctrl-C aborts at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli.arguments import tool_parser

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
GET_CHUNK = 1000
RETRYABLE = {429, 500, 502, 503, 504}
READY_TIMEOUT_S = 10


@dataclass(frozen=True)
class Entry:
    path: Path
    key: str
    size: int
    mtime: float

    @property
    def metadata(self) -> dict:
        return {"size": self.size, "mtime": self.mtime}


@dataclass
class Summary:
    found: int = 0
    skipped: int = 0
    indexed: int = 0
    failed: int = 0
    interrupted: bool = False
    elapsed_s: float = 0.0
    failures_file: str = ""
    failures: list[dict] = field(default_factory=list)

    def line(self) -> str:
        rate = self.indexed / self.elapsed_s if self.elapsed_s else 0.0
        text = (
            f"{'interrupted: ' if self.interrupted else ''}indexed {self.indexed}, "
            f"skipped {self.skipped} (already indexed), failed {self.failed}"
            f"{f' (see {self.failures_file})' if self.failed else ''}; "
            f"{self.found} images found, {self.elapsed_s:.1f} s, {rate:.1f} images/s"
        )
        return text + ("\nrun the same command again to continue" if self.interrupted else "")

    def to_json(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "failures"}


def walk(folder: Path, prefix: str = "") -> list[Entry]:
    """Every image file under `folder`, sorted, keyed by its relative path."""
    entries = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
                continue
            st = path.stat()
            entries.append(Entry(path, prefix + path.relative_to(folder).as_posix(), st.st_size, st.st_mtime))
    return entries


def read_failures(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_failures(path: Path, failures: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(f) + "\n" for f in failures))
    os.replace(tmp, path)


def is_retryable(exc: BaseException) -> bool:
    from bentoml.exceptions import BentoMLException

    if isinstance(exc, BentoMLException):
        return int(getattr(exc, "error_code", 500)) in RETRYABLE
    return isinstance(exc, (OSError, asyncio.TimeoutError)) or type(exc).__module__.startswith(("httpx", "aiohttp"))


class Indexer:
    def __init__(self, client, args: argparse.Namespace) -> None:
        self.client, self.args = client, args

    async def already_indexed(self, entries: list[Entry]) -> set[str]:
        """Keys the index holds with the same size and mtime (unchanged files)."""
        done: set[str] = set()
        for start in range(0, len(entries), GET_CHUNK):
            chunk = entries[start : start + GET_CHUNK]
            try:
                answer = await self.client.get(keys=[e.key for e in chunk], index=self.args.index)
            except Exception as exc:
                if getattr(exc, "error_code", None) == 404:  # the index does not exist yet
                    return done
                raise
            stored = {item["key"]: item.get("metadata") or {} for item in answer["items"]}
            for e in chunk:
                meta = stored.get(e.key)
                if meta is not None and meta.get("size") == e.size and meta.get("mtime") == e.mtime:
                    done.add(e.key)
        return done

    async def send(self, batch: list[Entry]) -> list[dict]:
        """Index one batch; returns its failures. Server-side hiccups are retried."""
        delay = 1.0
        for attempt in range(self.args.retries + 1):
            try:
                answer = await self.client.index_images(
                    images=[e.path for e in batch],
                    keys=[e.key for e in batch],
                    metadata=[e.metadata for e in batch],
                    index=self.args.index,
                )
                break
            except Exception as exc:
                if attempt < self.args.retries and is_retryable(exc):
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                error = {"error": f"request_failed:{getattr(exc, 'error_code', type(exc).__name__)}", "detail": str(exc)[:500]}
                return [{"key": e.key, "path": str(e.path), **error} for e in batch]
        by_key = {e.key: e for e in batch}
        return [
            {"key": r["key"], "path": str(by_key[r["key"]].path), **(r["error"] or {})}
            for r in answer["results"]
            if not r["indexed"]
        ]


def make_client(args: argparse.Namespace):
    import bentoml

    return bentoml.AsyncHTTPClient(args.url, timeout=args.timeout, server_ready_timeout=READY_TIMEOUT_S)


async def index_entries(args, entries: list[Entry], summary: Summary, progress, stop: asyncio.Event) -> None:
    batches = [entries[i : i + args.batch_size] for i in range(0, len(entries), args.batch_size)]
    queue: asyncio.Queue = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def worker() -> None:
        # One client per worker: a BentoML client closes every file it opened when any of
        # its calls ends, which breaks uploads of other calls in flight on the same client.
        async with make_client(args) as client:
            indexer = Indexer(client, args)
            while not stop.is_set():
                try:
                    batch = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                failures = await indexer.send(batch)
                summary.failures.extend(failures)
                summary.failed += len(failures)
                summary.indexed += len(batch) - len(failures)
                progress.update(len(batch))
                progress.set_postfix(failed=summary.failed, refresh=False)

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))


async def run_async(args: argparse.Namespace) -> Summary:
    from tqdm import tqdm

    started = time.perf_counter()
    folder = Path(args.folder).expanduser().resolve()
    failures_path = Path(args.failures)
    summary = Summary(failures_file=str(failures_path))
    entries = walk(folder, args.key_prefix)
    if args.retry_failed:
        wanted = {f["key"] for f in read_failures(failures_path)}
        entries = [e for e in entries if e.key in wanted]
    summary.found = len(entries)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print("\nstopping: finishing the batches in flight (Ctrl-C again to abort)", file=sys.stderr)
            stop.set()
        else:
            for task in asyncio.all_tasks(loop):
                task.cancel()

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        async with make_client(args) as client:
            done = set() if args.no_skip else await Indexer(client, args).already_indexed(entries)
        todo = [e for e in entries if e.key not in done]
        summary.skipped = len(entries) - len(todo)
        with tqdm(total=len(todo), unit="img", desc=f"indexing into {args.index!r}", disable=args.quiet) as progress:
            await index_entries(args, todo, summary, progress, stop)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        summary.interrupted = stop.is_set()
        summary.elapsed_s = time.perf_counter() - started
        if args.retry_failed or summary.failures or failures_path.exists():
            write_failures(failures_path, summary.failures)
    return summary


def run(args: argparse.Namespace) -> Summary:
    return asyncio.run(run_async(args))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = tool_parser("index-folder", __doc__)
    p.add_argument("folder", help="folder to walk recursively for images")
    p.add_argument("--url", default="http://localhost:3000", help="the server (default %(default)s)")
    p.add_argument("--index", default="default", help="index name (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=16, help="images per request (default %(default)s, at most 64)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight (default %(default)s)")
    p.add_argument("--key-prefix", default="", help="prepended to every key (the relative path)")
    p.add_argument("--failures", default="index_failures.jsonl", help="failures file (default %(default)s)")
    p.add_argument("--retry-failed", action="store_true", help="send only the images listed in the failures file")
    p.add_argument("--no-skip", action="store_true", help="re-index images that are already indexed")
    p.add_argument("--retries", type=int, default=3, help="retries of a batch the server could not take (503...)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (last line)")
    args = p.parse_args(argv)
    if not 1 <= args.batch_size <= 64:
        p.error("--batch-size must be between 1 and 64")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.folder).is_dir():
        print(f"{args.folder} is not a folder", file=sys.stderr)
        return 2
    try:
        summary = run(args)
    except asyncio.CancelledError:
        print("aborted", file=sys.stderr)
        return 130
    except Exception as exc:
        if type(exc).__name__ in ("ServiceUnavailable", "ConnectError", "ConnectTimeout"):
            print(f"cannot reach the server at {args.url}: {exc}", file=sys.stderr)
            return 2
        raise
    print(summary.line())
    if args.json:
        print(json.dumps(summary.to_json()))
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
