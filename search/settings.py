"""Search settings from the environment (all optional; defaults measured, see README).

    IMAGE_EMBED_DATA_DIR              where indexes live (default ~/.local/share/image-embed,
                                      or $XDG_DATA_HOME/image-embed)
    IMAGE_EMBED_INDEX_KIND            ivfpq (default) | hnsw: the approximate index
    IMAGE_EMBED_INDEX_EXACT_MAX       live items up to which search is exact (default 20000)
    IMAGE_EMBED_INDEX_CANDIDATES      approximate candidates re-ranked exactly (default 200)
    IMAGE_EMBED_INDEX_NLIST           IVF lists (default 0: about 4 x sqrt(n))
    IMAGE_EMBED_INDEX_NPROBE          IVF lists searched per query (default 16)
    IMAGE_EMBED_INDEX_HNSW_M          HNSW links per node (default 32)
    IMAGE_EMBED_INDEX_EF_SEARCH       HNSW search breadth (default 64)
    IMAGE_EMBED_INDEX_TAIL_MAX        new items searched exactly before the index is extended (default 10000)
    IMAGE_EMBED_INDEX_SNAPSHOT_EVERY  logged changes between automatic snapshots (default 100000)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from intake.settings import env_int

from .ann import KINDS, AnnSettings
from .catalog import default_data_dir
from .store import StoreSettings


class SearchSettingsError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    data_dir: Path
    store: StoreSettings
    ann: AnnSettings

    @classmethod
    def from_env(cls) -> "SearchSettings":
        kind = os.environ.get("IMAGE_EMBED_INDEX_KIND", "").strip().lower() or AnnSettings().kind
        if kind not in KINDS:
            raise SearchSettingsError(f"IMAGE_EMBED_INDEX_KIND={kind!r} is unknown; use one of {KINDS}")
        a, s = AnnSettings(), StoreSettings()
        ann = AnnSettings(
            kind=kind,
            exact_max=env_int("IMAGE_EMBED_INDEX_EXACT_MAX", a.exact_max, minimum=0),
            candidates=env_int("IMAGE_EMBED_INDEX_CANDIDATES", a.candidates),
            nlist=env_int("IMAGE_EMBED_INDEX_NLIST", a.nlist, minimum=0),
            nprobe=env_int("IMAGE_EMBED_INDEX_NPROBE", a.nprobe),
            hnsw_m=env_int("IMAGE_EMBED_INDEX_HNSW_M", a.hnsw_m, minimum=4),
            ef_search=env_int("IMAGE_EMBED_INDEX_EF_SEARCH", a.ef_search),
            tail_max=env_int("IMAGE_EMBED_INDEX_TAIL_MAX", a.tail_max),
        )
        store = StoreSettings(snapshot_every=env_int("IMAGE_EMBED_INDEX_SNAPSHOT_EVERY", s.snapshot_every))
        return cls(data_dir=default_data_dir(), store=store, ann=ann)
