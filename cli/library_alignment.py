"""Is an embeddings file aligned with its paths? (`image-embed import-library`)

The old image-search service's library keeps vectors in `embeddings.npy` and paths in
`paths.txt`, row N for line N, and silently lost the alignment after row 300,000. Before anything is written, the
import checks it the way that library's own lesson says: re-embed the image at a row's path
through the server and compare with the stored row (cosine >= 0.95).

- `sample_rows`: rows spread evenly over the range, first and last included;
- `verify`: each sampled row checked; a row whose file is missing is reported and another
  row next to it is used;
- `find_break`: when a sample fails, bisection between the last good sample before it and
  the first bad one, down to `precision` rows: "rows 0-299,999 aligned; misaligned from
  about row 300,000". Alignment is assumed to break once and stay broken (a shifted
  range); samples that pass again after a failure are reported as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

MISSING = "missing"


@dataclass
class Check:
    row: int
    cosine: float | None  # None: the file is missing or unreadable
    error: str | None = None

    def ok(self, min_cosine: float) -> bool:
        return self.cosine is not None and self.cosine >= min_cosine


@dataclass
class Alignment:
    start: int
    stop: int  # rows [start, stop) were asked about
    min_cosine: float
    samples: list[Check] = field(default_factory=list)
    probes: list[Check] = field(default_factory=list)  # the bisection's
    aligned_until: int | None = None  # rows [start, aligned_until) are aligned; None: all of them

    @property
    def all_aligned(self) -> bool:
        return self.aligned_until is None

    def describe(self) -> str:
        if self.all_aligned:
            return f"rows {self.start:,}-{self.stop - 1:,} aligned ({len(self.samples)} samples, cosine >= {self.min_cosine})"
        if self.aligned_until <= self.start:
            return f"misaligned from row {self.start:,}: nothing in rows {self.start:,}-{self.stop - 1:,} is aligned"
        return f"rows {self.start:,}-{self.aligned_until - 1:,} aligned; misaligned from about row {self.aligned_until:,}"

    def to_json(self) -> dict:
        checks = lambda cs: [{"row": c.row, "cosine": c.cosine, "error": c.error} for c in cs]  # noqa: E731
        return {
            "rows": [self.start, self.stop],
            "min_cosine": self.min_cosine,
            "aligned_until": self.aligned_until,
            "summary": self.describe(),
            "samples": checks(self.samples),
            "bisection": checks(self.probes),
        }


def sample_rows(start: int, stop: int, count: int) -> list[int]:
    if stop - start <= count:
        return list(range(start, stop))
    return sorted({int(r) for r in np.linspace(start, stop - 1, count).round()})


Embed = Callable[[list[int]], list[Check]]  # rows -> their checks (cosine of fresh vs stored)


def checked(rows: list[int], embed: Embed, stop: int, tries: int = 8) -> list[Check]:
    """Checks of `rows`; a row whose file is missing is replaced by the next rows (up to
    `tries`), so a sample says something about its place."""
    out = []
    for check in embed(rows):
        row = check.row
        while check.cosine is None and row + 1 < min(stop, check.row + tries):
            row += 1
            check = embed([row])[0]
        out.append(check)
    return out


def find_break(good: int, bad: int, embed: Embed, min_cosine: float, precision: int, stop: int, probes: list[Check]) -> int:
    """The first misaligned row between a good row and a bad one, to within `precision`."""
    while bad - good > precision:
        mid = (good + bad) // 2
        (check,) = checked([mid], embed, bad)
        probes.append(check)
        if check.cosine is None:  # nothing readable between mid and bad: treat as bad
            bad = mid
        elif check.ok(min_cosine):
            good = check.row
        else:
            bad = min(bad, check.row)
    return bad


def verify(start: int, stop: int, embed: Embed, samples: int, min_cosine: float, precision: int) -> Alignment:
    result = Alignment(start, stop, min_cosine)
    result.samples = checked(sample_rows(start, stop, samples), embed, stop)
    readable = [c for c in result.samples if c.cosine is not None]
    if not readable:
        result.aligned_until = start  # nothing could be checked: nothing is trusted
        return result
    first_bad = next((i for i, c in enumerate(readable) if not c.ok(min_cosine)), None)
    if first_bad is None:
        return result
    good = readable[first_bad - 1].row if first_bad > 0 else start - 1
    result.aligned_until = find_break(good, readable[first_bad].row, embed, min_cosine, precision, stop, result.probes)
    return result
