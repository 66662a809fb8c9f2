"""Fixtures of the search tests: `place` runs a test on each back end."""

from __future__ import annotations

import pytest

from tests.search.backends import BACKENDS, new_place


@pytest.fixture(params=BACKENDS)
def place(request, tmp_path) -> str:
    return new_place(request.param, tmp_path)
