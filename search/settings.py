"""Search settings: a view of config.settings (IMAGE_EMBED_DATA_DIR and IMAGE_EMBED_INDEX_*;
defaults measured, see README; documented in docs/configuration.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings, SettingsError, load_settings

from .ann import AnnSettings
from .catalog import default_data_dir
from .store import StoreSettings

SearchSettingsError = SettingsError  # the one settings error (kept under its old name)


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    data_dir: Path
    store: StoreSettings
    ann: AnnSettings

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
        store = StoreSettings(snapshot_every=s.index_snapshot_every)
        return cls(data_dir=default_data_dir(), store=store, ann=ann)

    @classmethod
    def from_env(cls) -> "SearchSettings":
        return cls.from_settings(load_settings())
