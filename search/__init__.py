"""The search engine: named indexes of key -> (vector, metadata, source) on a real database,
with exact and approximate search. Two back ends behind one storage interface:

- embedded (default): SQLite, one file per index, mirrored in memory; FAISS candidates
  with exact re-ranking;
- PostgreSQL + pgvector (IMAGE_EMBED_SEARCH_URL): shared by every server, HNSW in SQL.

No BentoML here: runners/index.py is thin glue over the open indexes (settings.open_indexes), so
everything is testable in-process.

    manifest.py     what an index is bound to: model, dimension, metric, normalization
    items.py        what a key, metadata object and source may be
    storage.py      the storage interface (upsert, delete, get, iterate, count, binding)
    queries.py      pages, filters, hits and example queries, duplicates, shared by both back ends
    labels.py       ratings, tags and hidden: what they may be, the filters, browse pages
    label_mirror.py the embedded back end's labels in memory (for search masks)
    perceptual_hash.py  the 64-bit pHash of an image (imagehash)
    phash_groups.py near-identical groups by pHash (multi-index hashing, FAISS binary)
    sqlite_store.py the embedded store: SQLite (WAL, synchronous=FULL) + the in-memory rows
    sqlite_labels.py, sqlite_check.py   its labels and pHashes in SQL; its self-check
    table.py        the in-memory rows: ids, vectors, keys, metadata, tombstones
    ann.py          approximate candidates (FAISS) over a frozen set of ids
    collection.py   embedded search: exact, or FAISS candidates re-ranked exactly
    indexes.py      embedded indexes under a data directory (IndexRegistry)
    pg_store.py     PostgreSQL: connection pool, schema, the store of one index
    pg_labels.py    its labels and pHashes in SQL
    pg_index.py     PostgreSQL search: ORDER BY embedding <=> q over HNSW
    pg_indexes.py   PostgreSQL indexes, shared by every server (PgIndexRegistry)
    settings.py     the settings and the choice of back end
"""

from .errors import (
    BackendUnavailable,
    CorruptIndex,
    IndexBusy,
    IndexNotFound,
    InvalidItem,
    ManifestMismatch,
    SearchError,
)
from .manifest import Binding

__all__ = [
    "BackendUnavailable",
    "Binding",
    "CorruptIndex",
    "IndexBusy",
    "IndexNotFound",
    "InvalidItem",
    "ManifestMismatch",
    "SearchError",
]
