"""Copy an index from one back end to the other (or to another place of the same kind).

    image-embed migrate-index --from ~/.local/share/image-embed --to postgresql://user@db/images --index photos
    image-embed migrate-index --from postgresql://user@db/images --to ./data --index photos --to-index photos2

A place is a data directory (embedded SQLite) or a postgresql:// URL. The target index is
created with the source's binding (model, dimension, metric, normalization); one that
already exists must have the same binding, and its items with the same keys are replaced
(so a rerun after an interruption just continues). Items are read in id order and written
in batches, each durable when it returns, with their thumbnails, perceptual hashes and labels
(rating, hidden, tags by name) in the same transaction, with a progress bar. At the end every
source item is read back from the target and compared: same key, metadata, source, labels,
thumbnail and pHash, vector cosine >= 0.99999. Exit status 0 when the copy verified, 1 otherwise. Stop the servers that use a
SQLite place first (one process owns an SQLite index); PostgreSQL servers may keep running,
but writes made to the source meanwhile are not copied.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from cli.arguments import tool_parser


MIN_COSINE = 0.99999


def copy(source, target, batch: int, quiet: bool) -> int:
    from tqdm import tqdm

    from search.labels import ItemLabels

    copied = 0
    with tqdm(total=source.count, unit="item", disable=quiet, desc="copying") as bar:
        for items in source.store.iterate(batch):
            target.upsert(
                [it.key for it in items], np.stack([it.vector for it in items]),
                [it.metadata for it in items], [it.source for it in items],
                [source.thumbnail(it.key) for it in items],  # the UI's thumbnails travel too
                phashes=[it.phash for it in items],
                labels=[ItemLabels(rating=it.rating, hidden=it.hidden, tags=tuple(it.tags)) for it in items],
            )
            copied += len(items)
            bar.update(len(items))
    return copied


def verify(source, target, batch: int, quiet: bool) -> dict:
    """Every source item is in the target with the same metadata, source, vector and thumbnail."""
    from tqdm import tqdm

    problems, checked, min_cos = [], 0, 1.0
    with tqdm(total=source.count, unit="item", disable=quiet, desc="verifying") as bar:
        for items in source.store.iterate(batch):
            copies = target.get([it.key for it in items], with_vectors=True)
            for it, other in zip(items, copies):
                if other is None:
                    problems.append(f"{it.key!r} is missing from the target")
                    continue
                cos = float(np.dot(it.vector, other.vector) / (np.linalg.norm(it.vector) * np.linalg.norm(other.vector)))
                min_cos = min(min_cos, cos)
                if cos < MIN_COSINE or other.metadata != it.metadata or other.source != it.source or (
                    source.thumbnail(it.key) != target.thumbnail(it.key)
                ) or (other.rating, other.hidden, sorted(other.tags)) != (it.rating, it.hidden, sorted(it.tags)):
                    problems.append(f"{it.key!r} differs in the target (cosine {cos:.6f})")
            checked += len(items)
            bar.update(len(items))
    source_hashes = dict(zip(*source.store.phashes(include_hidden=True)))
    target_hashes = dict(zip(*target.store.phashes(include_hidden=True)))
    differ = [k for k, h in source_hashes.items() if target_hashes.get(k) != h]
    if differ:
        problems.append(f"{len(differ)} perceptual hashes differ in the target (as {differ[0]!r})")
    check = target.check()
    problems += check.problems
    if check.count < checked:
        problems.append(f"the target holds {check.count} items, the source {checked}")
    return {"checked": checked, "min_cosine": min_cos if checked else None, "problems": problems[:50]}


def main(argv: list[str] | None = None) -> int:
    from search.backend import indexes_at

    p = tool_parser("migrate-index", __doc__)
    p.add_argument("--from", dest="source", required=True, help="data directory or postgresql:// URL")
    p.add_argument("--to", dest="target", required=True, help="data directory or postgresql:// URL")
    p.add_argument("--index", default="default")
    p.add_argument("--to-index", help="the target index's name (default: the same)")
    p.add_argument("--batch", type=int, default=2000, help="items per write (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    src_catalog, dst_catalog = indexes_at(args.source), indexes_at(args.target)
    try:
        source = src_catalog.get(args.index)
        binding = source.store.binding
        target = dst_catalog.get(args.to_index or args.index, binding, create=True)
        copied = copy(source, target, args.batch, args.quiet)
        report = {"index": args.index, "to_index": target.name, "copied": copied, **verify(source, target, args.batch, args.quiet)}
    finally:
        src_catalog.close()
        dst_catalog.close()
    report["ok"] = not report["problems"]
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
