"""Both back ends behind one test helper: a "place" is a data directory (embedded SQLite) or
a postgresql:// URL (a fresh database on the session's PostgreSQL, tests/postgres.py)."""

from __future__ import annotations

from pathlib import Path

from search.backend import indexes_at as open_indexes  # noqa: F401  (a registry over a place, as a server opens it)

BACKENDS = ("sqlite", "postgresql")


def new_place(backend: str, tmp_path: Path) -> str:
    if backend == "postgresql":
        from tests.postgres import fresh_database

        return fresh_database()
    return str(tmp_path)
