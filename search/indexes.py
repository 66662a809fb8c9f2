"""Named embedded indexes under one data directory, opened once and owned by this process.

    IMAGE_EMBED_DATA_DIR   where indexes live (default: $XDG_DATA_HOME/image-embed, that is
                           ~/.local/share/image-embed); each index is a folder <name>/ with
                           its SQLite database (sqlite_store.py)

At start-up every index found is opened: its vector file mapped, its newest rows checked
against the database (O(tail)), its saved approximate index read; an index that fails stays
closed and every request for it gets the reason. Background work
(approximate index builds) runs on one thread. pg_indexes.py is the PostgreSQL twin.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from config.settings import load_settings

from .ann import AnnSettings
from .collection import Collection
from .errors import CorruptIndex, SearchError
from .manifest import Binding, check_binding, check_name
from .sqlite_store import StoreSettings, drop_store, is_index, open_store

logger = logging.getLogger("image_embed.search.indexes")


def default_data_dir() -> Path:
    configured = load_settings().data_dir
    if configured is not None:
        return configured.expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "image-embed"


class IndexRegistry:
    backend = "sqlite"

    def __init__(
        self,
        data_dir: Path | None = None,
        store_settings: StoreSettings | None = None,
        ann_settings: AnnSettings | None = None,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store_settings = store_settings or StoreSettings()
        self.ann_settings = ann_settings or AnnSettings()
        self._open: dict[str, Collection] = {}
        self.failed: dict[str, SearchError] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-bg")

    def names(self) -> list[str]:
        return sorted(p.name for p in self.data_dir.iterdir() if not p.name.startswith(".") and is_index(p))

    def open_all(self) -> dict[str, str]:
        """Open every index on disk; returns name -> "ok" or the error that keeps it closed."""
        report = {}
        for name in self.names():
            try:
                self.get(name)
                report[name] = "ok"
            except SearchError as exc:
                logger.error("index %r cannot be opened: %s", name, exc.detail)
                report[name] = f"{exc.code}: {exc.detail}"
        return report

    def get(self, name: str, binding: Binding | None = None, *, create: bool = False) -> Collection:
        """The open index `name`; created bound to `binding` when `create` and absent.
        A binding that differs from the index's manifest is refused (ManifestMismatch)."""
        check_name(name)
        with self._lock:
            coll = self._open.get(name)
            if coll is None:
                if name in self.failed and (self.data_dir / name).exists():
                    raise self.failed[name]
                try:
                    store = open_store(self.data_dir, name, binding, create=create, settings=self.store_settings)
                except CorruptIndex as exc:  # remembered: reading it again would fail again
                    self.failed[name] = exc
                    raise
                self.failed.pop(name, None)
                coll = Collection(store, self.ann_settings, self._executor.submit)
                self._open[name] = coll
                logger.info("index %r open: %d items, opened in %.2f s", name, store.count, store.load_s)
        if binding is not None:
            check_binding(name, coll.store.binding, binding)
        return coll

    def drop(self, name: str) -> bool:
        """Close and remove index `name` with all its data. True if it existed."""
        check_name(name)
        with self._lock:
            coll = self._open.pop(name, None)
            if coll is not None:
                coll.close(checkpoint=False)
            self.failed.pop(name, None)
            return drop_store(self.data_dir, name)

    def describe(self) -> dict:
        return {"backend": self.backend, "data_dir": str(self.data_dir)}

    def close(self) -> None:
        with self._lock:
            for name, coll in list(self._open.items()):
                try:
                    coll.close()
                except Exception:
                    logger.exception("index %r did not close cleanly", name)
            self._open.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
