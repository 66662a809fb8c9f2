"""The write-ahead log: every upsert and delete is on disk before it is acknowledged.

Segments are files `wal-<first lsn>.log`: an 8-byte magic, then records framed as

    u32 length | u32 crc32(payload) | payload (length bytes)

and payload = op, lsn, id, the key, metadata JSON, source and the float32 vector. Records
have consecutive log sequence numbers (lsn). Reading stops at the first frame that is
short or fails its CRC: a crash can only tear the tail (appends are sequential and a
segment is fsync'd before the next one starts), so that tail was never acknowledged; it
is reported, skipped and truncated away before new records are appended. A gap in the
sequence between segments can only mean lost acknowledged data and is refused.

Group commit: writers append under the store's write lock, then call `sync(lsn)` outside
it. Only one fsync runs at a time; a writer whose record was covered by an fsync that
started after its write returns without another. Concurrent writers therefore share
fsyncs, and each is acknowledged only once its own records are durable.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CorruptIndex
from .fsutil import fsync_dir

logger = logging.getLogger("image_embed.search.wal")

MAGIC = b"IEWAL\x00\x01\n"
FRAME = struct.Struct("<II")  # length, crc32
HEADER = struct.Struct("<BQQIIII")  # op, lsn, id, key_len, meta_len, source_len, dim
UPSERT, DELETE = 1, 2
MAX_RECORD = 64 * 1024 * 1024
_sync = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True)
class Record:
    op: int
    lsn: int
    id: int
    key: str
    vector: np.ndarray | None = None  # float32 (dim,), upserts only
    metadata: dict | None = None
    source: str | None = None


def encode(rec: Record) -> bytes:
    key = rec.key.encode()
    meta = b"" if rec.metadata is None else json.dumps(rec.metadata, separators=(",", ":")).encode()
    source = (rec.source or "").encode()
    vec = b"" if rec.vector is None else np.ascontiguousarray(rec.vector, dtype="<f4").tobytes()
    dim = len(vec) // 4
    payload = HEADER.pack(rec.op, rec.lsn, rec.id, len(key), len(meta), len(source), dim) + key + meta + source + vec
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def decode(payload: bytes) -> Record:
    op, lsn, id_, klen, mlen, slen, dim = HEADER.unpack_from(payload)
    pos = HEADER.size
    if pos + klen + mlen + slen + 4 * dim != len(payload) or op not in (UPSERT, DELETE):
        raise ValueError("inconsistent record header")
    key = payload[pos : pos + klen].decode()
    pos += klen
    meta = json.loads(payload[pos : pos + mlen]) if mlen else None
    pos += mlen
    source = payload[pos : pos + slen].decode() or None
    pos += slen
    vector = np.frombuffer(payload, dtype="<f4", count=dim, offset=pos).astype(np.float32) if dim else None
    return Record(op=op, lsn=lsn, id=id_, key=key, vector=vector, metadata=meta, source=source)


@dataclass
class SegmentScan:
    path: Path
    start: int  # the lsn in its name
    records: int = 0
    last_lsn: int = 0  # 0: none read
    good_bytes: int = 0  # where the valid prefix ends
    size: int = 0
    torn: str | None = None  # why reading stopped early


def segment_name(first_lsn: int) -> str:
    return f"wal-{first_lsn:020d}.log"


def list_segments(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob("wal-*.log"):
        try:
            found.append((int(path.stem[4:]), path))
        except ValueError:
            continue
    return sorted(found)


def scan_segment(path: Path, start: int, apply: Callable[[Record], None] | None) -> SegmentScan:
    """Read `path`'s valid records in order (handing each to `apply`); stop at a torn frame."""
    scan = SegmentScan(path=path, start=start, size=path.stat().st_size)
    with open(path, "rb") as f:
        magic = f.read(len(MAGIC))
        if len(magic) < len(MAGIC):
            scan.torn = "segment header incomplete"
            return scan
        if magic != MAGIC:
            raise CorruptIndex(f"{path} is not a write-ahead log segment")
        scan.good_bytes = len(MAGIC)
        expected = start
        while True:
            frame = f.read(FRAME.size)
            if not frame:
                break
            if len(frame) < FRAME.size:
                scan.torn = "frame header cut short"
                break
            length, crc = FRAME.unpack(frame)
            if length > MAX_RECORD or length < HEADER.size:
                scan.torn = f"impossible record length {length}"
                break
            payload = f.read(length)
            if len(payload) < length:
                scan.torn = f"record cut short ({len(payload)} of {length} bytes)"
                break
            if zlib.crc32(payload) != crc:
                scan.torn = "CRC mismatch"
                break
            try:
                rec = decode(payload)
            except (ValueError, UnicodeDecodeError, struct.error) as exc:
                scan.torn = f"undecodable record ({exc})"
                break
            if rec.lsn != expected:
                raise CorruptIndex(f"{path}: record lsn {rec.lsn} where {expected} was expected")
            expected += 1
            if apply is not None:
                apply(rec)
            scan.records += 1
            scan.last_lsn = rec.lsn
            scan.good_bytes += FRAME.size + length
    return scan


def replay(folder: Path, after_lsn: int, apply: Callable[[Record], None]) -> list[SegmentScan]:
    """Apply every logged record with lsn > after_lsn, in order, and return what was read.

    Raises CorruptIndex when a record the snapshot does not hold is missing (a gap
    between segments, or a torn segment that is not the last one).
    """
    needed = after_lsn + 1  # the next lsn to apply
    scans: list[SegmentScan] = []
    for start, path in list_segments(folder):
        if start > needed:
            raise CorruptIndex(
                f"write-ahead log records {needed}..{start - 1} are missing before {path.name} "
                f"(the snapshot holds up to {after_lsn})"
            )
        floor = needed
        scan = scan_segment(path, start, lambda r: apply(r) if r.lsn >= floor else None)
        scans.append(scan)
        if scan.records:
            needed = max(needed, scan.last_lsn + 1)
        if scan.torn:
            lost = scan.size - scan.good_bytes
            logger.warning("%s: torn tail skipped at byte %d (%d bytes, %s)", path, scan.good_bytes, lost, scan.torn)
    return scans


def read_segment(path: Path) -> tuple[list[Record], SegmentScan]:
    """Every valid record of one segment, and how reading ended (for tests and tools)."""
    out: list[Record] = []
    scan = scan_segment(path, int(path.stem[4:]), out.append)
    return out, scan


class WalWriter:
    """Appends to the newest segment; rotates to a new one when a snapshot starts."""

    def __init__(self, folder: Path, segment: Path, start: int, good_bytes: int | None, last_lsn: int) -> None:
        self.folder = folder
        self._sync_lock = threading.Lock()
        self.written_lsn = last_lsn
        self.durable_lsn = last_lsn
        self.failed: str | None = None
        self._open(segment, start, good_bytes)

    def _open(self, segment: Path, start: int, good_bytes: int | None) -> None:
        new = good_bytes is None or good_bytes < len(MAGIC)
        self.fd = os.open(segment, os.O_WRONLY | os.O_CREAT, 0o644)
        if new:
            os.ftruncate(self.fd, 0)
            os.write(self.fd, MAGIC)
            self.offset = len(MAGIC)
        else:
            os.ftruncate(self.fd, good_bytes)  # drop a torn tail before appending after it
            self.offset = good_bytes
        os.lseek(self.fd, self.offset, os.SEEK_SET)
        os.fsync(self.fd)
        fsync_dir(self.folder)
        self.segment = segment
        self.start = start

    def write(self, data: bytes, last_lsn: int) -> None:
        """Append records (the caller holds the store's write lock). Not yet durable."""
        if self.failed:
            raise OSError(f"the write-ahead log failed earlier ({self.failed}); restart to recover")
        try:
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except OSError as exc:
            try:  # leave no partial record behind for later appends to follow
                os.ftruncate(self.fd, self.offset)
                os.lseek(self.fd, self.offset, os.SEEK_SET)
            except OSError:
                self.failed = str(exc)
            raise
        self.offset += len(data)
        self.written_lsn = last_lsn

    def sync(self, lsn: int) -> None:
        """Return once every record up to `lsn` is on disk (group commit)."""
        with self._sync_lock:
            if self.durable_lsn >= lsn:
                return  # an fsync that began after our write covered it
            target = self.written_lsn
            try:
                _sync(self.fd)
            except OSError as exc:
                self.failed = f"fsync: {exc}"
                raise
            self.durable_lsn = target

    def rotate(self, next_lsn: int) -> list[Path]:
        """Close the current segment (fsync'd) and start `wal-<next_lsn>.log`.

        The caller holds the write lock. Returns the segments a snapshot at lsn
        `next_lsn - 1` makes obsolete (every one before the new segment).
        """
        with self._sync_lock:
            if self.start == next_lsn:
                return [p for s, p in list_segments(self.folder) if s < next_lsn]
            _sync(self.fd)
            self.durable_lsn = self.written_lsn
            os.close(self.fd)
            self._open(self.folder / segment_name(next_lsn), next_lsn, None)
        return [p for s, p in list_segments(self.folder) if s < next_lsn]

    def close(self) -> None:
        with self._sync_lock:
            if self.fd >= 0:
                try:
                    _sync(self.fd)
                finally:
                    os.close(self.fd)
                    self.fd = -1
