"""Search settings: a view of config.settings (IMAGE_EMBED_DATA_DIR, IMAGE_EMBED_INDEX_* for
the embedded back end, IMAGE_EMBED_SEARCH_* for PostgreSQL; documented in
docs/configuration.md), and `open_indexes`, which picks the back end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings, SettingsError, load_settings

from .ann import AnnSettings
from .indexes import default_data_dir
from .pg_store import PgSettings, check_url
from .sqlite_store import StoreSettings

SearchSettingsError = SettingsError  # the one settings error (kept under its old name)


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    data_dir: Path
    store: StoreSettings
    ann: AnnSettings
    pg: PgSettings | None = None  # set: PostgreSQL (IMAGE_EMBED_SEARCH_URL)

    @classmethod
    def from_settings(cls, s: Settings) -> "SearchSettings":
        ann = AnnSettings(
            kind=s.index_kind,
            exact_max=s.index_exact_max,
            candidates=s.index_candidates,
            nlist=s.index_nlist,
            nprobe=s.index_nprobe,
            hnsw_m=s.index_hnsw_m,
            ef_search=s.index_ef_search,
            tail_max=s.index_tail_max,
        )
        pg = None
        if s.search_url:
            try:
                check_url(s.search_url)
            except ValueError as exc:
                raise SettingsError(f"IMAGE_EMBED_SEARCH_URL {exc}") from None
            pg = PgSettings(
                url=s.search_url,
                pool_size=s.search_pool_size,
                connect_timeout=s.search_connect_timeout,
                statement_timeout_ms=s.search_statement_timeout_ms,
                ef_search=s.search_ef_search,
                hnsw_m=s.search_hnsw_m,
                ef_construction=s.search_ef_construction,
            )
        return cls(data_dir=default_data_dir(), store=StoreSettings(), ann=ann, pg=pg)

    @classmethod
    def from_env(cls) -> "SearchSettings":
        return cls.from_settings(load_settings())


def open_indexes(settings: SearchSettings):
    """The indexes: in PostgreSQL when IMAGE_EMBED_SEARCH_URL is set, else embedded (SQLite)."""
    if settings.pg is not None:
        from .pg_indexes import PgIndexRegistry

        return PgIndexRegistry(settings.pg)
    from .indexes import IndexRegistry

    return IndexRegistry(settings.data_dir, settings.store, settings.ann)


def indexes_at(place: str, ann: AnnSettings | None = None):
    """The indexes at `place`: a postgresql:// URL, or a data directory (scripts, tests)."""
    if place.startswith(("postgresql://", "postgres://")):
        from .pg_indexes import PgIndexRegistry

        check_url(place)
        return PgIndexRegistry(PgSettings(url=place))
    from .indexes import IndexRegistry

    return IndexRegistry(Path(place).expanduser(), StoreSettings(), ann or AnnSettings())
