"""cli/library_alignment.py without a server: samples spread over the range, the break
found by bisection to within the precision, missing files stepped over, nothing trusted
when nothing can be read."""

from __future__ import annotations

import pytest

from cli.library_alignment import Check, sample_rows, verify


def fake_embed(break_at: int, missing: set[int] = frozenset(), calls: list | None = None):
    def embed(rows):
        if calls is not None:
            calls.extend(rows)
        return [Check(r, None, "missing") if r in missing else Check(r, 0.999 if r < break_at else 0.4) for r in rows]

    return embed


def test_samples_are_spread_and_include_both_ends():
    assert sample_rows(0, 300_000, 5) == [0, 75_000, 150_000, 224_999, 299_999]
    assert sample_rows(10, 13, 32) == [10, 11, 12]


@pytest.mark.parametrize("break_at", [300_000, 1, 123_457, 349_999])
@pytest.mark.parametrize("precision", [1, 1000])
def test_the_break_is_found_within_the_precision(break_at, precision):
    calls = []
    result = verify(0, 350_000, fake_embed(break_at, calls=calls), 32, 0.95, precision)
    assert not result.all_aligned
    assert break_at <= result.aligned_until <= break_at + precision
    assert len(calls) <= 32 + 20  # a bisection, not a scan
    if precision == 1 and break_at == 300_000:
        assert result.describe() == "rows 0-299,999 aligned; misaligned from about row 300,000"


def test_everything_aligned_and_missing_files_stepped_over():
    result = verify(0, 1000, fake_embed(10**9, missing={0, 1, 500}), 8, 0.95, 1)
    assert result.all_aligned and result.describe().startswith("rows 0-999 aligned")
    assert [c.row for c in result.samples][:1] == [2] and all(c.cosine for c in result.samples)


def test_a_break_at_the_first_row_and_nothing_readable():
    assert verify(0, 100, fake_embed(0), 8, 0.95, 1).aligned_until == 0
    unreadable = verify(0, 100, fake_embed(10**9, missing=set(range(100))), 8, 0.95, 1)
    assert unreadable.aligned_until == 0 and "nothing" in unreadable.describe()
