"""The search engine: a durable key <-> id <-> vector store with exact and approximate search.

No BentoML here: runners/index.py is thin glue over `Catalog` (many named indexes under one
data directory), so everything is testable in-process.

    fsutil.py     atomic file writes (temp, fsync, rename, fsync the folder)
    manifest.py   what an index is bound to: model, dimension, metric, normalization
    wal.py        the write-ahead log: length-prefixed, CRC32-checked records, group commit
    table.py      the in-memory rows: ids, vectors, keys, metadata, tombstones
    snapshot.py   atomic snapshots of the live rows
    store.py      the durable store: manifest + snapshot + log, one writer per index
    ann.py        approximate candidates (FAISS) over a frozen set of ids
    collection.py exact and approximate search with exact re-ranking, background rebuilds
    catalog.py    named indexes under a data directory
"""

from .errors import (
    CorruptIndex,
    IndexBusy,
    IndexNotFound,
    InvalidItem,
    ManifestMismatch,
    SearchError,
)
from .manifest import Binding

__all__ = [
    "Binding",
    "CorruptIndex",
    "IndexBusy",
    "IndexNotFound",
    "InvalidItem",
    "ManifestMismatch",
    "SearchError",
]
