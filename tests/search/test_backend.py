"""search/backend.py: the search settings reach the approximate index and the PostgreSQL store
by name (IMAGE_EMBED_INDEX_X -> AnnSettings.x, IMAGE_EMBED_SEARCH_X -> PgSettings.x)."""

from __future__ import annotations

import dataclasses

import pytest

from config.sections import SearchSettings
from config.settings import SettingsError, load_settings
from search.ann import AnnSettings
from search.backend import STORE_FIELDS, ann_settings, open_indexes, pg_settings, store_settings
from search.pg_store import PgSettings


def test_every_index_setting_reaches_the_approximate_index(monkeypatch):
    values = {"kind": "hnsw", "exact_max": "5", "candidates": "7", "nlist": "9", "nprobe": "3",
              "hnsw_m": "12", "ef_search": "33", "tail_max": "44"}
    for name, value in values.items():
        monkeypatch.setenv(f"IMAGE_EMBED_INDEX_{name.upper()}", value)
    ann = ann_settings(load_settings())
    assert {name: str(getattr(ann, name)) for name in values} == values
    ann_fields = [n for n in SearchSettings.model_fields if n.startswith("index_") and n not in STORE_FIELDS]
    assert sorted(values) == sorted(n.removeprefix("index_") for n in ann_fields)
    assert ann.pq_m == AnnSettings().pq_m  # what no variable sets keeps its default


def test_the_vector_dtype_reaches_the_embedded_store(monkeypatch):
    assert store_settings(load_settings()).vector_dtype == "float16"
    monkeypatch.setenv("IMAGE_EMBED_INDEX_VECTOR_DTYPE", "float32")
    assert store_settings(load_settings()).vector_dtype == "float32"


def test_every_postgres_setting_reaches_the_store():
    settings = SearchSettings(search_url="postgresql://u@127.0.0.1:1/db", search_pool_size=3, search_connect_timeout=1.5,
                              search_statement_timeout_ms=100, search_ef_search=40, search_hnsw_m=8, search_ef_construction=16)
    pg = pg_settings(settings)
    assert dataclasses.asdict(pg) == {**dataclasses.asdict(PgSettings(url="x")), "url": "postgresql://u@127.0.0.1:1/db",
                                      "pool_size": 3, "connect_timeout": 1.5, "statement_timeout_ms": 100,
                                      "ef_search": 40, "hnsw_m": 8, "ef_construction": 16}


def test_the_embedded_catalog_opens_under_the_data_directory(tmp_path):
    catalog = open_indexes(SearchSettings(data_dir=tmp_path, index_nprobe=5))
    try:
        assert catalog.backend == "sqlite" and catalog.ann_settings.nprobe == 5
    finally:
        catalog.close()


def test_a_malformed_postgres_url_is_a_settings_error():
    with pytest.raises(SettingsError, match="IMAGE_EMBED_SEARCH_URL"):
        open_indexes(SearchSettings(search_url="postgresql://[bad"))
