"""The durable store of one index: manifest + newest snapshot + write-ahead log.

    <data dir>/<name>/manifest.json             the binding (model, dim, metric, normalization)
    <data dir>/<name>/LOCK                      flock'd while open: one writer process per index
    <data dir>/<name>/snapshot-<lsn>/           the live rows at lsn (see snapshot.py)
    <data dir>/<name>/wal-<first lsn>.log       every change after it (see wal.py)

An upsert or delete returns only after its log records are fsync'd (group commit), so an
acknowledged change survives `kill -9` at any moment: start-up loads the newest snapshot
and replays the log after it. A snapshot starts a new log segment, is written atomically,
and only then are older snapshots and segments removed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CorruptIndex, IndexBusy, IndexNotFound, InvalidItem
from .fsutil import dir_size, fsync_dir
from .items import MAX_METADATA_BYTES, check_key, check_source, normalize_metadata
from .manifest import MANIFEST, Binding, check_binding, check_name, read_manifest, write_manifest
from .snapshot import Capture, clean_temp, load_snapshot, remove_older, snapshot_dirs, write_snapshot
from .table import Table
from .wal import DELETE, UPSERT, Record, WalWriter, encode, list_segments, replay, segment_name

logger = logging.getLogger("image_embed.search.store")

NORM_TOLERANCE = 1e-3


@dataclass(frozen=True, kw_only=True)
class StoreSettings:
    snapshot_every: int = 100_000  # log records between automatic snapshots
    snapshot_bytes: int = 512 * 1024 * 1024  # ... or this many log bytes
    compact_ratio: float = 0.25  # at a snapshot, drop tombstoned rows from memory beyond this share
    max_metadata_bytes: int = MAX_METADATA_BYTES  # per item, as JSON


@dataclass
class Item:
    key: str
    id: int
    metadata: dict | None
    source: str | None
    vector: np.ndarray | None = None


@dataclass
class CheckReport:
    count: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def open_store(
    data_dir: Path, name: str, binding: Binding | None = None, *, create: bool = False, settings: StoreSettings | None = None
) -> "Store":
    """Open index `name` (creating it, bound to `binding`, when asked and absent)."""
    check_name(name)
    folder = Path(data_dir) / name
    if not (folder / MANIFEST).exists():
        if not create or binding is None:
            raise IndexNotFound(f"there is no index named {name!r}")
        _create(Path(data_dir), name, binding)
    return Store(folder, name, binding, settings or StoreSettings())


def _create(data_dir: Path, name: str, binding: Binding) -> None:
    """Create the index folder atomically: it appears complete (manifest and empty log) or not at all."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".tmp-create-{name}-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    try:
        write_manifest(tmp, name, binding)
        WalWriter(tmp, tmp / segment_name(1), 1, None, 0).close()
        fsync_dir(tmp)
        try:
            os.rename(tmp, data_dir / name)
        except OSError:
            if not (data_dir / name / MANIFEST).exists():  # not a concurrent creation: a real failure
                raise
        fsync_dir(data_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Store:
    def __init__(self, folder: Path, name: str, wanted: Binding | None, settings: StoreSettings) -> None:
        self.folder, self.name, self.settings = folder, name, settings
        self._write_lock = threading.Lock()
        self._snapshot_lock = threading.Lock()
        self._lock_fd = self._acquire()
        self.closed = False
        try:
            self.manifest, self.binding = read_manifest(folder)
            if wanted is not None:
                check_binding(name, self.binding, wanted)
            clean_temp(folder)
            self.table = Table(self.binding.dim)
            self.snapshot_lsn, self.last_snapshot_at = 0, None
            snaps = snapshot_dirs(folder)
            if snaps:
                loaded = load_snapshot(snaps[-1][1], self.binding.dim)
                self.table.adopt(loaded.ids, loaded.vectors, loaded.count, loaded.keys, loaded.metas, loaded.sources)
                self.table.lsn, self.table.next_id = loaded.lsn, max(loaded.next_id, self.table.next_id)
                self.snapshot_lsn = loaded.lsn
                self.last_snapshot_at = json.loads((snaps[-1][1] / "snapshot.json").read_text())["created_at"]
            scans = replay(folder, self.table.lsn, self._apply)
            self.replayed = sum(s.records for s in scans)
            self.torn_tail = next((s.torn for s in reversed(scans) if s.torn), None)
            self.wal = self._open_writer(scans)
            self._since_snapshot = self.table.lsn - self.snapshot_lsn
            self._bytes_since = sum(s.good_bytes for s in scans if s.start > self.snapshot_lsn)
            report = self.check()
            if not report.ok:
                raise CorruptIndex(f"index {name!r} failed its start-up check: " + "; ".join(report.problems[:5]))
        except BaseException:
            self._release()
            raise

    # -- opening ---------------------------------------------------------------------------
    def _acquire(self) -> int:
        fd = os.open(self.folder / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise IndexBusy(
                f"index {self.name!r} is open in another process (pid {holder}); one server owns a data directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def _release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

    def _apply(self, rec: Record) -> None:
        try:
            if rec.op == UPSERT:
                if rec.vector is None or rec.vector.shape != (self.binding.dim,):
                    raise ValueError(f"a {None if rec.vector is None else rec.vector.shape} vector in a {self.binding.dim}-d index")
                self.table.append([rec.id], rec.vector[None], [rec.key], [rec.metadata], [rec.source])
            else:
                self.table.tombstone(rec.key, rec.id)
        except ValueError as exc:
            raise CorruptIndex(f"index {self.name!r}: log record {rec.lsn} cannot apply: {exc}") from None
        self.table.lsn = rec.lsn

    def _open_writer(self, scans) -> WalWriter:
        last = scans[-1] if scans else None
        following = self.table.lsn + 1
        if last is not None and (last.last_lsn + 1 if last.records else last.start) == following:
            return WalWriter(self.folder, last.path, last.start, last.good_bytes, self.table.lsn)
        return WalWriter(self.folder, self.folder / segment_name(following), following, None, self.table.lsn)

    # -- validation ------------------------------------------------------------------------
    def prepare_vectors(self, vectors) -> np.ndarray:
        """float32 (m, dim), finite, L2-normalized when the index is; or InvalidItem."""
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != self.binding.dim:
            raise InvalidItem(f"vectors must have {self.binding.dim} dimensions; got shape {tuple(arr.shape)}")
        if not np.all(np.isfinite(arr)):
            raise InvalidItem("vectors must be finite (no NaN or infinity)")
        if self.binding.normalized:
            norms = np.linalg.norm(arr, axis=1, keepdims=True)
            if np.any(norms == 0):
                raise InvalidItem("a zero vector cannot be normalized")
            arr = arr / norms
        return np.ascontiguousarray(arr, dtype=np.float32)

    # -- writing ---------------------------------------------------------------------------
    def upsert(self, keys, vectors, metadata=None, sources=None) -> list[int]:
        """Insert or replace items by key; durable when it returns. Returns their new ids."""
        keys = [check_key(k) for k in keys]
        vecs = self.prepare_vectors(vectors) if keys else np.empty((0, self.binding.dim), np.float32)
        limit = self.settings.max_metadata_bytes
        metas = [normalize_metadata(m, limit) for m in (metadata if metadata is not None else [None] * len(keys))]
        srcs = [check_source(s) for s in (sources if sources is not None else [None] * len(keys))]
        if not (len(keys) == len(vecs) == len(metas) == len(srcs)):
            raise InvalidItem(f"{len(keys)} keys, {len(vecs)} vectors, {len(metas)} metadata, {len(srcs)} sources")
        if not keys:
            return []
        with self._write_lock:
            self._check_open()
            t = self.table
            first_id, first_lsn = t.next_id, t.lsn + 1
            ids = list(range(first_id, first_id + len(keys)))
            blob = b"".join(
                encode(Record(UPSERT, first_lsn + i, ids[i], keys[i], vecs[i], metas[i], srcs[i])) for i in range(len(keys))
            )
            last = first_lsn + len(keys) - 1
            self.wal.write(blob, last)
            t.append(ids, vecs, keys, metas, srcs)
            t.lsn = last
            self._since_snapshot += len(keys)
            self._bytes_since += len(blob)
        self.wal.sync(last)
        return ids

    def delete(self, keys) -> tuple[list[str], list[str]]:
        """Delete items by key; durable when it returns. Returns (deleted, missing)."""
        keys = [check_key(k) for k in keys]
        with self._write_lock:
            self._check_open()
            t = self.table
            targets, missing, seen = [], [], set()
            for key in keys:
                if key in seen:
                    continue
                seen.add(key)
                row = t.row_of(key)
                (targets if row is not None else missing).append((key, None if row is None else int(t.ids[row])))
            if not targets:
                return [], [k for k, _ in missing]
            first = t.lsn + 1
            blob = b"".join(encode(Record(DELETE, first + i, id_, key)) for i, (key, id_) in enumerate(targets))
            last = first + len(targets) - 1
            self.wal.write(blob, last)
            for key, id_ in targets:
                t.tombstone(key, id_)
            t.lsn = last
            self._since_snapshot += len(targets)
            self._bytes_since += len(blob)
        self.wal.sync(last)
        return [k for k, _ in targets], [k for k, _ in missing]

    def _check_open(self) -> None:
        if self.closed:
            raise IndexNotFound(f"index {self.name!r} was closed")

    # -- reading ---------------------------------------------------------------------------
    def get(self, keys, with_vectors: bool = False) -> list[Item | None]:
        out: list[Item | None] = []
        with self._write_lock:  # a consistent row lookup (compaction renumbers rows)
            t = self.table
            for key in keys:
                row = t.row_of(key)
                if row is None:
                    out.append(None)
                    continue
                vec = t.vectors[row].copy() if with_vectors else None
                out.append(Item(key, int(t.ids[row]), t.metas[row], t.sources[row], vec))
        return out

    def keys(self) -> list[str]:
        with self._write_lock:
            return list(self.table.key_to_row)

    @property
    def count(self) -> int:
        return self.table.count

    # -- snapshots -------------------------------------------------------------------------
    def needs_snapshot(self) -> bool:
        """Due once the log since the last snapshot holds `snapshot_every` changes (or
        `snapshot_bytes`), or half as many changes as the index has items, whichever is
        more: a large index is not rewritten every few changes, and a replay at start-up
        never reads more than about half the index's size again."""
        changes = max(self.settings.snapshot_every, self.table.count // 2)
        size = max(self.settings.snapshot_bytes, self.table.count * self.binding.dim * 2)
        return self._since_snapshot >= changes or self._bytes_since >= size

    def snapshot(self, force: bool = False) -> Path | None:
        """Write the live rows atomically, then drop what it makes obsolete. Writers wait only
        for the capture (a copy of the tombstone flags), not for the writing."""
        with self._snapshot_lock:
            with self._write_lock:
                self._check_open()
                t = self.table
                if t.lsn == self.snapshot_lsn and not force and snapshot_dirs(self.folder):
                    return None
                dead = t.n - t.count
                if dead > self.settings.compact_ratio * max(t.n, 1):
                    t.compact()
                cap = Capture(t.lsn, t.next_id, t.n, t.ids, t.vectors, t.alive[: t.n].copy(), t.keys, t.metas, t.sources)
                obsolete = self.wal.rotate(t.lsn + 1)
                self._since_snapshot, self._bytes_since = 0, 0
            path = write_snapshot(self.folder, cap)
            remove_older(self.folder, cap.lsn)
            for segment in obsolete:
                segment.unlink(missing_ok=True)
            fsync_dir(self.folder)
            self.snapshot_lsn, self.last_snapshot_at = cap.lsn, time.time()
            return path

    # -- checks and stats ------------------------------------------------------------------
    def check(self, vectors: bool = True) -> CheckReport:
        """Alignment: every key maps to exactly one live row whose key is that key; ids strictly
        increase below next_id; optionally, every live vector is finite (and unit length)."""
        with self._write_lock:
            t = self.table
            report = CheckReport(count=t.count)
            alive = t.alive[: t.n]
            if int(alive.sum()) != len(t.key_to_row):
                report.problems.append(f"{int(alive.sum())} live rows but {len(t.key_to_row)} keys")
            for key, row in t.key_to_row.items():
                if not (0 <= row < t.n) or not alive[row] or t.keys[row] != key:
                    report.problems.append(f"key {key!r} points at row {row}, which holds {t.keys[row] if 0 <= row < t.n else None!r}")
                    if len(report.problems) > 20:
                        break
            ids = t.ids[: t.n]
            if t.n and (np.any(np.diff(ids) <= 0) or ids[-1] >= t.next_id or ids[0] < 0):
                report.problems.append("internal ids are not strictly increasing below next_id")
            if not (len(t.keys) == len(t.metas) == len(t.sources) == t.n):
                report.problems.append("row columns have different lengths")
            if vectors and t.n:
                live = t.vectors[: t.n][alive]
                if not np.all(np.isfinite(live)):
                    report.problems.append("some stored vectors are not finite")
                elif self.binding.normalized and len(live):
                    norms = np.linalg.norm(live, axis=1)
                    if np.any(np.abs(norms - 1) > NORM_TOLERANCE):
                        report.problems.append(f"{int(np.sum(np.abs(norms - 1) > NORM_TOLERANCE))} vectors are not unit length")
        return report

    def stats(self) -> dict:
        t = self.table
        segments = list_segments(self.folder)
        return {
            "name": self.name,
            "count": t.count,
            "dim": self.binding.dim,
            "model": self.binding.model,
            "metric": self.binding.metric,
            "normalized": self.binding.normalized,
            "rows": t.n,
            "tombstones": t.n - t.count,
            "next_id": t.next_id,
            "lsn": t.lsn,
            "bytes_on_disk": dir_size(self.folder),
            "log_bytes": sum(p.stat().st_size for _, p in segments if p.exists()),
            "last_snapshot": {
                "lsn": self.snapshot_lsn,
                "at": self.last_snapshot_at,
                "age_s": None if self.last_snapshot_at is None else max(0.0, time.time() - self.last_snapshot_at),
            },
            "changes_since_snapshot": t.lsn - self.snapshot_lsn,
        }

    def close(self, snapshot: bool = True) -> None:
        """Snapshot when anything changed (so the next start replays nothing), then unlock."""
        if self.closed:
            return
        try:
            if snapshot and self.table.lsn != self.snapshot_lsn and not self.wal.failed:
                self.snapshot()
        finally:
            with self._snapshot_lock, self._write_lock:
                self.closed = True
                self.wal.close()
                self._release()


def is_index(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()
