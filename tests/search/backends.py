"""Both back ends behind one test helper: a "place" is a data directory (embedded SQLite) or
a postgresql:// URL (a fresh database on the session's PostgreSQL, tests/postgres.py)."""

from __future__ import annotations

from pathlib import Path

from search.ann import AnnSettings
from search.sqlite_store import StoreSettings

BACKENDS = ("sqlite", "postgresql")


def new_place(backend: str, tmp_path: Path) -> str:
    if backend == "postgresql":
        from tests.postgres import fresh_database

        return fresh_database()
    return str(tmp_path)


def open_catalog(place: str, ann: AnnSettings | None = None):
    """A catalog over `place`, as a server would open it."""
    if place.startswith("postgresql://"):
        from search.pg_catalog import PgCatalog
        from search.pg_store import PgSettings

        return PgCatalog(PgSettings(url=place, connect_timeout=5))
    from search.catalog import Catalog

    return Catalog(Path(place), StoreSettings(), ann or AnnSettings())
