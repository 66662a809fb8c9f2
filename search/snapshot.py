"""Snapshots: the live rows of an index at one log position, written atomically.

A snapshot is a folder `snapshot-<lsn>/` holding ids.npy (int64), vectors.npy (float32),
items.jsonl (one `[key, metadata, source]` per row, same order) and snapshot.json (lsn,
next id, count, dimension, and the size and CRC32 of each file). It is written under a
temp name, every file and the folder fsync'd, then renamed: a folder named snapshot-* is
always complete. Loading checks sizes, checksums, shapes and ordering; any disagreement
is a CorruptIndex error, never a silently shorter index.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CorruptIndex
from .fsutil import fsync_dir
from .table import GROWTH, MIN_CAPACITY

FORMAT = 1
META = "snapshot.json"
ROWS_PER_CHUNK = 65536


@dataclass
class Capture:
    """What a snapshot writes, taken under the write lock (cheap: references and one copy)."""

    lsn: int
    next_id: int
    n: int
    ids: np.ndarray
    vectors: np.ndarray
    alive: np.ndarray  # a copy: tombstones after the capture do not leak in
    keys: list
    metas: list
    sources: list


@dataclass
class Loaded:
    lsn: int
    next_id: int
    count: int
    ids: np.ndarray  # with spare capacity; rows [0, count) are valid
    vectors: np.ndarray
    keys: list
    metas: list
    sources: list
    path: Path | None


class _CrcWriter:
    def __init__(self, f) -> None:
        self.f, self.crc, self.size = f, 0, 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)


def snapshot_dirs(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob("snapshot-*"):
        try:
            found.append((int(path.name[len("snapshot-") :]), path))
        except ValueError:
            continue
    return sorted(found)


def clean_temp(folder: Path) -> None:
    """Remove what a crash left half-written (never visible under a final name)."""
    for path in folder.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _npy_header(dtype: str, shape: tuple) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _write(path: Path, produce) -> dict:
    with open(path, "wb") as f:
        out = _CrcWriter(f)
        produce(out)
        f.flush()
        os.fsync(f.fileno())
    return {"bytes": out.size, "crc32": out.crc}


def write_snapshot(folder: Path, cap: Capture) -> Path:
    live = np.flatnonzero(cap.alive[: cap.n])
    dim = cap.vectors.shape[1]
    tmp = folder / f".tmp-snapshot-{cap.lsn:020d}-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    try:
        files = {}

        def ids_file(out) -> None:
            out.write(_npy_header("<i8", (len(live),)))
            out.write(np.ascontiguousarray(cap.ids[live], dtype="<i8").tobytes())

        def vectors_file(out) -> None:
            out.write(_npy_header("<f4", (len(live), dim)))
            for start in range(0, len(live), ROWS_PER_CHUNK):
                out.write(np.ascontiguousarray(cap.vectors[live[start : start + ROWS_PER_CHUNK]], "<f4").tobytes())

        def items_file(out) -> None:
            lines = []
            for r in live:
                lines.append(json.dumps([cap.keys[r], cap.metas[r], cap.sources[r]], separators=(",", ":")) + "\n")
                if len(lines) >= ROWS_PER_CHUNK:
                    out.write("".join(lines).encode())
                    lines = []
            out.write("".join(lines).encode())

        files["ids.npy"] = _write(tmp / "ids.npy", ids_file)
        files["vectors.npy"] = _write(tmp / "vectors.npy", vectors_file)
        files["items.jsonl"] = _write(tmp / "items.jsonl", items_file)
        meta = {
            "format": FORMAT,
            "lsn": cap.lsn,
            "next_id": cap.next_id,
            "count": int(len(live)),
            "dim": dim,
            "created_at": time.time(),
            "files": files,
        }
        _write(tmp / META, lambda out: out.write(json.dumps(meta, indent=2).encode()))
        fsync_dir(tmp)
        final = folder / f"snapshot-{cap.lsn:020d}"
        os.rename(tmp, final)
        fsync_dir(folder)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_npy(path: Path, spec: dict, dtype: str, shape: tuple, capacity: int) -> np.ndarray:
    """Read an .npy into the first rows of an array with `capacity` rows, checking its CRC."""
    header = _npy_header(dtype, shape)
    out = np.empty((capacity, *shape[1:]), dtype=np.dtype(dtype).newbyteorder("="))
    with open(path, "rb") as f:
        head = f.read(len(header))
        if head != header:
            raise CorruptIndex(f"{path}: header says something other than {dtype} {shape}")
        crc = zlib.crc32(head)
        buf = memoryview(out[: shape[0]].reshape(-1).view(np.uint8)) if shape[0] else memoryview(b"")
        pos = 0
        while pos < len(buf):
            got = f.readinto(buf[pos : pos + 64 * 1024 * 1024])
            if not got:
                raise CorruptIndex(f"{path} is shorter than its header says")
            crc = zlib.crc32(buf[pos : pos + got], crc)
            pos += got
        if f.read(1):
            raise CorruptIndex(f"{path} is longer than its header says")
    if crc != spec["crc32"]:
        raise CorruptIndex(f"{path}: checksum mismatch")
    return out


def load_snapshot(path: Path, dim: int) -> Loaded:
    try:
        meta = json.loads((path / META).read_text())
        count, files = int(meta["count"]), meta["files"]
        if meta.get("format") != FORMAT or int(meta["dim"]) != dim:
            raise CorruptIndex(f"{path}: format {meta.get('format')} / dimension {meta['dim']} is not {FORMAT} / {dim}")
        capacity = max(MIN_CAPACITY, int(count * GROWTH))
        for name, spec in files.items():
            if (path / name).stat().st_size != spec["bytes"]:
                raise CorruptIndex(f"{path / name}: {(path / name).stat().st_size} bytes, the snapshot says {spec['bytes']}")
        ids = _read_npy(path / "ids.npy", files["ids.npy"], "<i8", (count,), capacity)
        vectors = _read_npy(path / "vectors.npy", files["vectors.npy"], "<f4", (count, dim), capacity)
        raw = (path / "items.jsonl").read_bytes()
        if zlib.crc32(raw) != files["items.jsonl"]["crc32"]:
            raise CorruptIndex(f"{path / 'items.jsonl'}: checksum mismatch")
        keys, metas, sources = [], [], []
        for line in raw.splitlines():
            key, metadata, source = json.loads(line)
            keys.append(key)
            metas.append(metadata)
            sources.append(source)
        if len(keys) != count:
            raise CorruptIndex(f"{path}: {len(keys)} items for {count} vectors")
        return Loaded(int(meta["lsn"]), int(meta["next_id"]), count, ids, vectors, keys, metas, sources, path)
    except CorruptIndex:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptIndex(f"snapshot {path} is unreadable: {type(exc).__name__}: {exc}") from None


def remove_older(folder: Path, lsn: int) -> None:
    for old_lsn, path in snapshot_dirs(folder):
        if old_lsn < lsn:
            shutil.rmtree(path, ignore_errors=True)
