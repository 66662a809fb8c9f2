"""The search engine: named indexes of key -> (vector, metadata, source) on a real database,
with exact and approximate search. Two back ends behind one storage interface:

- embedded (default): SQLite, one database and one memory-mapped vector file per index;
  FAISS candidates with exact re-ranking;
- PostgreSQL + pgvector (IMAGE_EMBED_SEARCH_URL): shared by every server, HNSW in SQL.

No BentoML here: runners/index.py is thin glue over the open indexes (settings.open_indexes), so
everything is testable in-process.

    manifest.py     what an index is bound to: model, dimension, metric, normalization
    items.py        what a key, metadata object and source may be
    storage.py      the storage interface (upsert, delete, get, iterate, count, binding)
    queries.py      pages, filters, hits and example queries, duplicates, shared by both back ends
    labels.py       ratings, tags and hidden: what they may be, the filters, browse pages
    label_mirror.py the embedded back end's labels in memory (for search filters)
    perceptual_hash.py  the 64-bit pHash of an image (imagehash's, DCT in numpy)
    phash_groups.py near-identical groups by pHash (multi-index hashing, FAISS binary)
    sqlite_store.py the embedded store: SQLite (WAL, synchronous=FULL) + the vector file
    sqlite_schema.py, sqlite_legacy.py  its schema and opening; the one-time conversion of
                    indexes of the previous layout (vectors as BLOBs)
    vector_file.py  the vectors: an append-only file by id, memory-mapped (float16)
    store_view.py   what a search sees: liveness by id, the mapped rows, the newest rows
    sqlite_upkeep.py  which newest rows stay in memory; dead rows' disk space given back
    sqlite_reads.py, sqlite_labels.py, sqlite_check.py   its reads, labels and pHashes in
                    SQL; its checks (O(tail) at start-up, O(n) for verify_index)
    crash_points.py test-only crash points between the vector file's and the database's writes
    ann.py          approximate candidates (FAISS) over a frozen set of ids
    candidates.py   exact scans and approximate candidates re-ranked exactly
    collection.py   embedded search: keys and metadata of the hits read in a consistent snapshot
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
    InsufficientStorage,
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
    "InsufficientStorage",
    "InvalidItem",
    "ManifestMismatch",
    "SearchError",
]
