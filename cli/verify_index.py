"""Check that an index's keys and vectors are aligned (a misaligned index answers with other items' vectors).

    image-embed verify-index --url http://localhost:3000 --index photos --sample 64
    image-embed verify-index --url ... --index photos --folder ~/Pictures --files 200
    image-embed verify-index --data-dir ~/.local/share/image-embed --index photos
    image-embed verify-index --search-url postgresql://user@db/images --index photos

Through the server (`verify_index` API): the structure (every key maps to exactly one
vector), up to `--sample` random items indexed from URLs fetched again and re-embedded,
and with `--folder`, `--files` random images of that folder (keyed as index_folder.py
keys them) sent, embedded and compared with what is stored under their keys. An item
passes at cosine >= 0.999. Without a server: `--data-dir` (the server stopped: it owns the
files) checks the SQLite file (PRAGMA quick_check) and the structure; `--search-url` checks
a PostgreSQL index's structure (servers may keep running). Exit status 0 when everything
passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from cli.arguments import tool_parser
from cli.index_folder import walk

BATCH = 64


def verify_server(args: argparse.Namespace) -> dict:
    import bentoml

    with bentoml.SyncHTTPClient(args.url, timeout=args.timeout, server_ready_timeout=10) as client:
        report = client.verify_index(sample=args.sample, index=args.index)
        if args.folder:
            entries = walk(Path(args.folder).expanduser().resolve(), args.key_prefix)
            picked = random.Random(args.seed).sample(entries, min(args.files, len(entries)))
            for start in range(0, len(picked), BATCH):
                chunk = picked[start : start + BATCH]
                part = client.verify_index(sample=0, images=[e.path for e in chunk], keys=[e.key for e in chunk], index=args.index)
                report["checked"] += part["checked"]
                report["mismatches"] += part["mismatches"]
                report["unreachable"] += part["unreachable"]
                mins = [m for m in (report["min_cosine"], part["min_cosine"]) if m is not None]
                report["min_cosine"] = min(mins) if mins else None
                report["ok"] = report["ok"] and part["ok"]
    return report


def verify_offline(args: argparse.Namespace) -> dict:
    from search.backend import indexes_at

    catalog = indexes_at(args.search_url or args.data_dir)
    try:
        index = catalog.get(args.index)
        check = index.check()
        problems = list(check.problems)
        if catalog.backend == "sqlite":
            problems += [f"sqlite: {r[0]}" for r in index.store.conn.execute("PRAGMA quick_check") if r[0] != "ok"]
        return {"index": args.index, "ok": not problems, "count": check.count, "problems": problems}
    finally:
        catalog.close()


def main(argv: list[str] | None = None) -> int:
    p = tool_parser("verify-index", __doc__)
    p.add_argument("--url", default="http://localhost:3000")
    p.add_argument("--index", default="default")
    p.add_argument("--sample", type=int, default=32, help="URL-indexed items to re-fetch and re-embed (max 256)")
    p.add_argument("--folder", help="check random images of this folder against their keys")
    p.add_argument("--files", type=int, default=100, help="how many images of --folder (default %(default)s)")
    p.add_argument("--key-prefix", default="", help="as given to index_folder.py")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--data-dir", help="check the SQLite files directly (the server must be stopped)")
    p.add_argument("--search-url", help="check a PostgreSQL index directly (postgresql://...)")
    args = p.parse_args(argv)
    report = verify_offline(args) if args.data_dir or args.search_url else verify_server(args)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
