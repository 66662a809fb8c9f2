"""Upkeep of the embedded store's memory and disk, outside the write path:

- `keep_hot_from`: which of the newest rows stay in memory as float32 (store_view.py
  HotRows): from where the approximate index stops covering on, within StoreSettings.hot_bytes;
- `reclaim`: the disk blocks of dead rows given back (vector_file.py `punch`), in the
  background once enough rows died.
"""

from __future__ import annotations

import logging

from .store_view import HotRows

logger = logging.getLogger("image_embed.search.sqlite")

RECLAIM_MIN_ROWS = 10_000  # dead rows since the last reclaim before their disk blocks are given back


class Upkeep:
    _dead_at_reclaim = 0

    def _hot_max_rows(self) -> int:
        return max(0, self.settings.hot_bytes // (4 * self.binding.dim))

    def keep_hot_from(self, start: int) -> None:
        """Keep float32 copies of the rows from id `start` on (what the approximate index does
        not cover), within StoreSettings.hot_bytes; older rows are read from the vector file."""
        with self._write_lock:  # no appends meanwhile
            if self.closed:
                return
            view = self._view
            start = max(0, min(start, view.next_id))
            hot = view.hot
            if start == hot.start:
                return
            if start > hot.start:
                new = HotRows.of(start, hot.vectors[start - hot.start : hot.n])
            elif view.next_id - start <= self._hot_max_rows():
                new = HotRows.of(start, view.read(start, view.next_id))
            else:
                return  # too many to hold: the file serves them
            with self._mem_lock:
                self.hot = new
                self._publish(view.next_id, self._view.count)

    def reclaim_due(self) -> bool:
        view = self._view
        dead = view.next_id - view.count
        return dead - self._dead_at_reclaim > max(RECLAIM_MIN_ROWS, view.next_id // 10)

    def reclaim(self) -> int:
        """Give back the disk blocks of dead rows (vector_file.py `punch`); returns the bytes.
        No lock: dead ids stay dead, and writes only touch rows past the watermark."""
        view = self._view
        self._dead_at_reclaim = view.next_id - view.count
        try:  # the view's ids only: past its next_id, its `alive` may not know the newer live ids
            return self.file.punch(view.alive, view.next_id)
        except OSError as exc:
            logger.warning("index %r: could not give back the dead rows' space: %s", self.name, exc)
            return 0

