"""Bring an existing library of vectors in: an `embeddings.npy` (row N = the vector of line N
of `paths.txt`), with its ratings and tags, without re-embedding every image.

    image-embed import-library --embeddings embeddings.npy --paths paths.txt \\
        --root "/Volumes/My Book" --url http://localhost:3000 --index photos
    ... --rows 0:300000 --accept-range --labels gallery.csv --thumbnails

1. The `.npy` is memory-mapped (never loaded whole) and `paths.txt` indexed by line offsets.
2. Alignment is verified before anything is written (cli/library_alignment.py): --samples
   rows spread over --rows are re-embedded through the server from the files under --root
   and compared with the stored rows (cosine >= --min-cosine, 0.95); when one fails, the
   break is found by bisection and reported. Only an aligned range is imported: the whole
   range when every sample passes, else the aligned part with --accept-range (without it
   nothing is written, exit status 2). The server must serve the model the vectors came
   from (CLIP ViT-B/32): with another one every sample fails.
3. Rows are sent to POST /index_vectors (--batch, up to 1000 a call), keyed by their line of
   paths.txt, with metadata {"row": N}; a rerun skips the keys already in the index. A row
   whose file is missing under --root is not imported: it is counted and listed in
   --missing (missing_files.txt). With --labels (CSV or JSON Lines of `path, rating, tags`;
   tags separated by ";" in CSV) the ratings and tags go in with their items. With
   --thumbnails each file is read to make its thumbnail and pHash (as index time does);
   otherwise imported items show the placeholder and have no pHash.

Prints a JSON report; exit status 0 (imported), 1 (some rows failed), 2 (refused: misaligned).
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cli.arguments import tool_parser
from cli.library_alignment import Check, verify

ENCODE_BATCH = 32


class Paths:
    """Line N of a text file, by seeking to its offset (a 410 MB paths.txt costs 8 bytes a line)."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "rb")
        offsets, at = [0], 0
        for line in self.file:
            at += len(line)
            offsets.append(at)
        if offsets[-1] == offsets[-2]:
            offsets.pop()
        self.offsets = np.asarray(offsets, np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, row: int) -> str:
        self.file.seek(int(self.offsets[row]))
        return self.file.read(int(self.offsets[row + 1] - self.offsets[row])).decode("utf-8").rstrip("\r\n")


def parse_rows(text: str | None, total: int) -> tuple[int, int]:
    if not text:
        return 0, total
    first, _, last = text.partition(":")
    start, stop = int(first or 0), int(last) if last else total
    if not 0 <= start < stop <= total:
        raise SystemExit(f"--rows {text}: must be within 0:{total}")
    return start, stop


def read_labels(path: Path | None) -> dict[str, dict]:
    """path -> {"rating", "tags"} from CSV (path,rating,tags with tags split on ';') or JSON Lines."""
    if path is None:
        return {}
    out = {}
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["path"]] = {"rating": rec.get("rating"), "tags": rec.get("tags")}
        return out
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            tags = [t.strip() for t in (rec.get("tags") or "").split(";") if t.strip()]
            rating = (rec.get("rating") or "").strip()
            out[rec["path"]] = {"rating": int(rating) if rating else None, "tags": tags or None}
    return out


class Library:
    def __init__(self, args: argparse.Namespace, http) -> None:
        self.args, self.http = args, http
        self.vectors = np.load(args.embeddings, mmap_mode="r")
        if self.vectors.ndim != 2:
            raise SystemExit(f"{args.embeddings}: expected a 2-D array, got shape {self.vectors.shape}")
        self.paths = Paths(args.paths)
        self.root = Path(args.root)

    def file_of(self, row: int) -> Path:
        path = Path(self.paths[row])
        return path if path.is_absolute() and not self.args.root_relative else self.root / path.as_posix().lstrip("/")

    def stored(self, row: int) -> np.ndarray:
        v = np.asarray(self.vectors[row], np.float32)
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def embed_checks(self, rows: list[int]) -> list[Check]:
        """Fresh CLIP vectors of the rows' files, through the server, against the stored rows."""
        out = []
        for start in range(0, len(rows), ENCODE_BATCH):
            chunk = rows[start : start + ENCODE_BATCH]
            present = [r for r in chunk if self.file_of(r).is_file()]
            files = [("images", (self.file_of(r).name, self.file_of(r).read_bytes(), "application/octet-stream")) for r in present]
            results = self.http.post("/encode_images", files=files).json()["results"] if files else []
            fresh = dict(zip(present, results))
            for r in chunk:
                res = fresh.get(r)
                if res is None:
                    out.append(Check(r, None, "missing"))
                elif res.get("error"):
                    out.append(Check(r, None, res["error"]["error"]))
                else:
                    v = np.asarray(res["embedding"], np.float32)
                    out.append(Check(r, float(self.stored(r) @ (v / np.linalg.norm(v)))))
        return out


def thumbnail_and_phash(path: Path) -> tuple[str | None, str | None]:
    from gateway.thumbnails import make_thumbnail
    from intake.decode import decode_image
    from config.sections import IntakeSettings
    from search.perceptual_hash import as_hex, phash_of

    try:
        image = decode_image(path.read_bytes(), IntakeSettings()).image
    except Exception:
        return None, None
    webp = make_thumbnail(image, 256)
    return (None if webp is None else base64.b64encode(webp).decode("ascii")), as_hex(phash_of(image))


def import_rows(lib: Library, start: int, stop: int, labels: dict, pool) -> dict:
    from tqdm import tqdm

    args, http = lib.args, lib.http
    report = {"imported": 0, "already_there": 0, "missing_files": 0, "labelled": 0, "failed_batches": 0}
    missing_out = open(args.missing, "w")
    with tqdm(total=stop - start, unit="row", desc="importing", disable=args.quiet) as bar:
        for first in range(start, stop, args.batch):
            rows = list(range(first, min(stop, first + args.batch)))
            keys = [lib.paths[r] for r in rows]
            got = http.post("/get", json={"keys": keys, "index": args.index}).json()
            there = {it["key"] for it in got.get("items", [])}
            todo = []
            for r, k in zip(rows, keys):
                if k in there:
                    report["already_there"] += 1
                elif not lib.file_of(r).is_file():
                    report["missing_files"] += 1
                    missing_out.write(f"{r}\t{k}\n")
                else:
                    todo.append((r, k))
            if todo:
                body = {
                    "index": args.index,
                    "keys": [k for _, k in todo],
                    "vectors": np.asarray(lib.vectors[[r for r, _ in todo]], np.float32).tolist(),
                    "metadata": [{"row": r} for r, _ in todo],
                }
                if labels:
                    found = [labels.get(k, {}) for _, k in todo]
                    body["ratings"] = [f.get("rating") for f in found]
                    body["tags"] = [f.get("tags") or [] for f in found]
                    report["labelled"] += sum(1 for f in found if f)
                if args.thumbnails:
                    made = list(pool.map(thumbnail_and_phash, [lib.file_of(r) for r, _ in todo]))
                    body["thumbnails"], body["phashes"] = [m[0] for m in made], [m[1] for m in made]
                resp = http.post("/index_vectors", json=body)
                if resp.status_code == 200:
                    report["imported"] += len(todo)
                else:
                    report["failed_batches"] += 1
                    print(f"rows {rows[0]}-{rows[-1]}: {resp.status_code} {resp.text[:300]}", file=sys.stderr)
            bar.update(len(rows))
    missing_out.close()
    return report


def main(argv: list[str] | None = None) -> int:
    p = tool_parser("import-library", __doc__)
    p.add_argument("--embeddings", type=Path, required=True, help="the .npy of vectors (row N = line N of --paths)")
    p.add_argument("--paths", type=Path, required=True, help="one path per line")
    p.add_argument("--root", default="/", help="the folder the paths are under (relative paths), or a prefix for absolute ones")
    p.add_argument("--root-relative", action="store_true", help="absolute paths too are taken under --root")
    p.add_argument("--url", default="http://localhost:3000")
    p.add_argument("--index", default="default")
    p.add_argument("--rows", help="START:STOP, the rows to import (default: all)")
    p.add_argument("--samples", type=int, default=32, help="rows re-embedded to verify the alignment (default %(default)s)")
    p.add_argument("--min-cosine", type=float, default=0.95, help="a row is aligned at this cosine or more (default %(default)s)")
    p.add_argument("--precision", type=int, default=1, help="the bisection stops within this many rows (default %(default)s)")
    p.add_argument("--accept-range", action="store_true", help="import the aligned part when the whole range is not")
    p.add_argument("--labels", type=Path, help="ratings and tags: CSV or JSON Lines of path, rating, tags")
    p.add_argument("--thumbnails", action="store_true", help="make thumbnails and pHashes from the original files")
    p.add_argument("--batch", type=int, default=1000, help="rows per index_vectors call (at most 1000)")
    p.add_argument("--workers", type=int, default=4, help="threads reading files for --thumbnails")
    p.add_argument("--missing", default="missing_files.txt", help="where rows whose file is missing are listed")
    p.add_argument("--verify-only", action="store_true", help="check the alignment, write nothing")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    args.batch = max(1, min(args.batch, 1000))

    import httpx

    with httpx.Client(base_url=args.url.rstrip("/"), timeout=args.timeout) as http, ThreadPoolExecutor(args.workers) as pool:
        lib = Library(args, http)
        total = min(len(lib.vectors), len(lib.paths))
        start, stop = parse_rows(args.rows, total)
        report: dict = {"embeddings": list(lib.vectors.shape), "paths": len(lib.paths), "index": args.index}
        if len(lib.vectors) != len(lib.paths):
            report["warning"] = f"{len(lib.vectors):,} vectors but {len(lib.paths):,} paths: only the first {total:,} rows pair up"
        alignment = verify(start, stop, lib.embed_checks, args.samples, args.min_cosine, args.precision)
        report["alignment"] = alignment.to_json()
        print(alignment.describe(), file=sys.stderr)
        if args.verify_only:
            print(json.dumps(report, indent=2))
            return 0 if alignment.all_aligned else 2
        if not alignment.all_aligned and not args.accept_range:
            report["refused"] = "not every sampled row is aligned: nothing was written (see --accept-range)"
            print(json.dumps(report, indent=2))
            return 2
        end = stop if alignment.all_aligned else alignment.aligned_until
        report["imported_rows"] = [start, end]
        report.update(import_rows(lib, start, end, read_labels(args.labels), pool) if end > start else {"imported": 0})
    print(json.dumps(report, indent=2))
    return 1 if report.get("failed_batches") else 0


if __name__ == "__main__":
    sys.exit(main())
