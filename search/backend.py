"""Which back end holds the indexes: PostgreSQL + pgvector when IMAGE_EMBED_SEARCH_URL is set,
else the embedded SQLite indexes under the data directory. `open_indexes` opens them as the
search settings say (config/sections.py, SearchSettings; documented in docs/configuration.md);
`indexes_at` opens them at a place given by hand (scripts, tests).
"""

from __future__ import annotations

from pathlib import Path

from config.sections import SearchSettings
from config.settings import SettingsError

from .ann import AnnSettings
from .indexes import default_data_dir
from .pg_store import PgSettings, check_url
from .sqlite_store import StoreSettings


STORE_FIELDS = {"index_vector_dtype": "vector_dtype"}  # IMAGE_EMBED_INDEX_* that set the store, not the index


def ann_settings(settings: SearchSettings) -> AnnSettings:
    """The approximate index as IMAGE_EMBED_INDEX_X sets AnnSettings' field x (except the
    store's, STORE_FIELDS); its other fields keep their defaults."""
    params = settings.parameters("index_")
    for name in STORE_FIELDS:
        params.pop(name.removeprefix("index_"))
    return AnnSettings(**params)


def store_settings(settings: SearchSettings) -> StoreSettings:
    """How a new embedded index stores its vectors (IMAGE_EMBED_INDEX_VECTOR_DTYPE)."""
    return StoreSettings(**{field: getattr(settings, name) for name, field in STORE_FIELDS.items()})


def pg_settings(settings: SearchSettings) -> PgSettings:
    """The PostgreSQL store as IMAGE_EMBED_SEARCH_X sets PgSettings' field x; a malformed URL
    fails the start."""
    try:
        check_url(settings.search_url or "")
    except ValueError as exc:
        raise SettingsError(f"IMAGE_EMBED_SEARCH_URL {exc}") from None
    return PgSettings(**settings.parameters("search_"))


def open_indexes(settings: SearchSettings):
    """The indexes: in PostgreSQL when IMAGE_EMBED_SEARCH_URL is set, else embedded (SQLite)."""
    if settings.search_url:
        pg = pg_settings(settings)
        from .pg_indexes import PgIndexRegistry

        return PgIndexRegistry(pg)
    from .indexes import IndexRegistry

    data_dir = settings.data_dir.expanduser() if settings.data_dir is not None else default_data_dir()
    return IndexRegistry(data_dir, store_settings(settings), ann_settings(settings))


def indexes_at(place: str, ann: AnnSettings | None = None):
    """The indexes at `place`: a postgresql:// URL, or a data directory (scripts, tests)."""
    if place.startswith(("postgresql://", "postgres://")):
        from .pg_indexes import PgIndexRegistry

        check_url(place)
        return PgIndexRegistry(PgSettings(url=place))
    from config.settings import load_settings

    from .indexes import IndexRegistry

    return IndexRegistry(Path(place).expanduser(), store_settings(load_settings()), ann or AnnSettings())
