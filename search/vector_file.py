"""The embedded index's vectors: one append-only file of fixed-size rows, row i holding the
vector of id i, memory-mapped for reading.

    <index>/vectors.f16   rows of `dim` little-endian float16 values (vectors.f32: float32)

Ids are allocated in order and never reused, so each row is written once, before the database
transaction that makes its id live, and never changed afterwards: a reader can never see a
row change under it, and a key can only ever meet the vector that was written for its id.

Write order (sqlite_store.py): write the rows, fsync the file, then commit the transaction
that advances `next_id` in the database past them. Crash-recovery rule, applied at every open
in O(1), with the committed `next_id` as the watermark:

- the file holds more than next_id rows: they belong to a write whose commit never happened
  (a crash or a failed commit between the two): the file is cut back to next_id rows. No
  committed row refers to those ids, so they are handed out again;
- the file holds fewer rows than next_id: rows the database committed are missing, which the
  write order never produces (a lost file, a copy from another moment): CorruptIndex, and
  nothing is served from it.

Dead rows (ids replaced or deleted) are never read again; `punch` gives their disk blocks
back to the filesystem (fallocate PUNCH_HOLE: the file keeps its length and reads zeros
there), where whole filesystem blocks are dead: a re-indexed folder's old rows all go; a
scattered delete frees nothing until its neighbours die too.

Reads go through a shared read-only memory map (the OS pages rows in on demand and keeps the
hot ones in its page cache; none of it is the process's private memory), with MADV_RANDOM so
that gathering a few hundred candidates reads a few hundred pages, not read-ahead windows.
Long sequential reads (index builds, checks) use pread, which keeps the kernel's read-ahead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import logging
import mmap
import os
import shutil
import zlib
from pathlib import Path

import numpy as np

from .errors import CorruptIndex, InsufficientStorage

logger = logging.getLogger("image_embed.search.vectors")

DTYPES = {"float16": "<f2", "float32": "<f4"}
MIN_MAP_ROWS = 4096
MAP_GROWTH = 1.5
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2


@functools.cache
def _fallocate():
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fn = libc.fallocate
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


def dead_runs(alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, stops) of the runs of dead ids in `alive`."""
    edges = np.diff(np.concatenate([[0], (~alive).astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def file_name(dtype: str) -> str:
    return "vectors.f16" if dtype == "float16" else "vectors.f32"


def storage_error(exc: OSError, name: str, place: Path) -> Exception:
    """The error a failed write of index `name` answers: 507 when the filesystem is full."""
    if exc.errno in FULL_ERRNOS:
        return insufficient_storage(name, place, exc.strerror or str(exc))
    return CorruptIndex(f"index {name!r}: the write was not stored: {exc}")


def insufficient_storage(name: str, place: Path, cause: str) -> InsufficientStorage:
    try:
        free = shutil.disk_usage(place).free
    except OSError:
        free = -1
    return InsufficientStorage(
        f"index {name!r}: the filesystem holding {place} is full ({cause}; {free:,} bytes free): the write was "
        "not stored and nothing stored before is lost; free some space and send it again"
    )


def checksums(stored: np.ndarray) -> list[int]:
    """CRC-32 of each stored row's bytes (what the database keeps beside the row's key)."""
    return [zlib.crc32(row) for row in stored]


class VectorFile:
    def __init__(self, path: Path, dim: int, dtype: str, committed: int, *, create: bool = False) -> None:
        self.path, self.dim, self.dtype_name = Path(path), dim, dtype
        self.dtype = np.dtype(DTYPES[dtype])
        self.row_bytes = dim * self.dtype.itemsize
        flags = os.O_RDWR | (os.O_CREAT if create or committed == 0 else 0)
        try:
            self.fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            raise CorruptIndex(f"{self.path} is missing, but the database holds {committed:,} committed vectors") from None
        self._array = np.empty((0, dim), self.dtype)
        self._capacity = 0
        self.rows = committed
        self.cut_rows = 0  # rows past next_id cut off at open (uncommitted, or the map's reserve)
        try:
            size = os.fstat(self.fd).st_size
            need = committed * self.row_bytes
            if size < need:
                raise CorruptIndex(
                    f"{self.path} holds {size // self.row_bytes:,} vectors but the database committed {committed:,}: "
                    "the vector file is shorter than the database (lost, or copied from another moment)"
                )
            if size > need:
                self.cut_rows = -(-(size - need) // self.row_bytes)
                os.ftruncate(self.fd, need)  # the crash-recovery rule: rows past next_id never committed
                logger.debug("%s: cut %d rows after the %d committed", self.path, self.cut_rows, committed)
            self._map(committed)
        except BaseException:
            os.close(self.fd)
            raise

    # -- writing (the store's write lock held) ------------------------------------------------
    def write(self, first_id: int, vectors: np.ndarray) -> np.ndarray:
        """Rows first_id, first_id + 1, ... := `vectors` (float32), in the storage type; returns
        them as stored. Not durable until `sync`. Raises OSError."""
        stored = np.ascontiguousarray(vectors, dtype=self.dtype)
        if stored.shape[1:] != (self.dim,):
            raise ValueError("vectors of the wrong dimension")  # the store's own bug
        data = memoryview(stored).cast("B")
        offset = first_id * self.row_bytes
        while data:
            done = os.pwrite(self.fd, data, offset)
            data, offset = data[done:], offset + done
        return stored

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def publish(self, rows: int) -> np.ndarray:
        """Rows below `rows` are committed: map them; returns the mapped array (valid below rows)."""
        self.rows = rows
        self._map(rows)
        return self._array

    def _map(self, rows: int) -> None:
        """Map at least `rows` rows, growing the map geometrically (the file is extended sparsely
        to the map's size: no disk blocks until written; an open cuts it back to next_id)."""
        if rows <= self._capacity:
            return
        cap = max(rows, int(self._capacity * MAP_GROWTH), MIN_MAP_ROWS)
        try:
            if os.fstat(self.fd).st_size < cap * self.row_bytes:
                os.ftruncate(self.fd, cap * self.row_bytes)
        except OSError:  # no reserve then (called after a commit: it must not fail); the rows are written
            cap = rows
            if not cap:
                return
        size = cap * self.row_bytes
        mm = mmap.mmap(self.fd, size, prot=mmap.PROT_READ)
        mm.madvise(mmap.MADV_RANDOM)
        # New map, new array: views holding the old array keep it (and its map) alive.
        self._array = np.frombuffer(mm, self.dtype).reshape(cap, self.dim)
        self._capacity = cap

    @property
    def array(self) -> np.ndarray:
        return self._array

    # -- reading --------------------------------------------------------------------------------
    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as stored, by pread (sequential, with the kernel's read-ahead)."""
        out = np.empty((max(0, stop - start), self.dim), self.dtype)
        view = memoryview(out).cast("B")
        offset = start * self.row_bytes
        while view:
            got = os.preadv(self.fd, [view], offset)
            if got == 0:
                raise CorruptIndex(f"{self.path} ends before row {offset // self.row_bytes}")
            view, offset = view[got:], offset + got
        return out

    def punch(self, alive: np.ndarray, upto: int) -> int:
        """Give back the disk blocks that hold only dead rows among ids below `upto` (`alive`
        by id, as a view that knows those ids saw it); returns the bytes punched (0 where the
        filesystem cannot). Rows from `upto` on are never touched, whatever `alive` says."""
        block = os.fstat(self.fd).st_blksize or 4096
        punched = 0
        for a, b in zip(*dead_runs(alive[: min(upto, self.rows)])):
            start = -(-int(a) * self.row_bytes // block) * block
            stop = int(b) * self.row_bytes // block * block
            if stop <= start:
                continue
            if _fallocate()(self.fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, start, stop - start) != 0:
                err = ctypes.get_errno()
                if err in (errno.EOPNOTSUPP, errno.ENOSYS):
                    return punched
                raise OSError(err, os.strerror(err), str(self.path))
            punched += stop - start
        return punched

    def disk_bytes(self) -> int:
        """Bytes the file takes on disk (the map's sparse reserve takes none)."""
        return os.fstat(self.fd).st_blocks * 512

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, self.rows * self.row_bytes)  # drop the map's reserve (views read below it)
            except OSError:
                pass  # the next open cuts it
            os.close(self.fd)
            self.fd = -1
        self._array = np.empty((0, self.dim), self.dtype)  # the map closes with its last view
        self._capacity = 0
