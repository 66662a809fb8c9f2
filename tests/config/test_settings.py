"""config.settings: every IMAGE_EMBED_* variable, its old default, and clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.settings import ENV_PREFIX, Settings, SettingsError, load_settings

OLD_DEFAULTS = {  # what each module read before config.settings existed
    "profile": "default", "models": (), "device": "auto", "require_gpu": False, "dinov2_variant": "base",
    "internvit_focus_area": 0.5, "internvit_tiles": (2, 2), "internvit_tile_overlap": 0.2,
    "internvit_level_weights": (0.5, 0.25, 0.25), "test_extract": "simple", "url_allowlist": (),
    "url_policy": "public", "max_image_bytes": 20 * 1024 * 1024, "max_image_pixels": 50_000_000,
    "min_image_side": 16, "fetch_connect_timeout": 5.0, "fetch_timeout": 20.0, "fetch_max_redirects": 5,
    "max_body_bytes": 64 * 1024 * 1024, "max_items": 64, "max_texts": 256, "max_text_chars": 10_000,
    "max_in_flight": 64, "max_tasks": 32, "classifiers_dir": Path("trained_classifiers"), "api_keys": (),
    "api_keys_file": None, "access_log": "json", "data_dir": None, "index_kind": "ivfpq",
    "index_exact_max": 20_000, "index_candidates": 200, "index_nlist": 0, "index_nprobe": 16,
    "index_hnsw_m": 32, "index_ef_search": 64, "index_tail_max": 10_000,
    "search_url": None, "search_pool_size": 8, "search_connect_timeout": 5.0, "search_statement_timeout_ms": 30_000,
    "search_ef_search": 100, "search_hnsw_m": 16, "search_ef_construction": 64,
    "thumbnails": True, "thumbnail_size": 256,
}
# settings added since (ONNX engine, JPEG draft, the batching wait's bound, CLIP models by name, the
# embedded index's vector file)
NEW_DEFAULTS = {
    "engine": "auto", "cpu_precision": "fp32", "jpeg_draft": False, "batch_wait": "bounded", "test_forward_delay_ms": 0,
    "extra_clip": (), "index_vector_dtype": "float16", "test_index_crash_at": "",
}


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_are_the_old_ones(clean_env):
    assert load_settings().model_dump() == {**OLD_DEFAULTS, **NEW_DEFAULTS}


def test_every_field_is_described():
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert (field.json_schema_extra or {}).get("accepted"), name


def test_the_error_is_the_projects_settings_error():
    assert issubclass(SettingsError, ValueError)


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("PROFILE", " Tiny ", "tiny"),
        ("MODELS", "clip, DINOv2 ,", ("clip", "dinov2")),
        ("REQUIRE_GPU", "yes", True),
        ("INTERNVIT_TILES", "3X1", (3, 1)),
        ("INTERNVIT_LEVEL_WEIGHTS", "1,0,0", (1.0, 0.0, 0.0)),
        ("URL_ALLOWLIST", "10.0.0.0/8, images.internal:8080", ("10.0.0.0/8", "images.internal:8080")),
        ("MAX_ITEMS", " 8 ", 8),
        ("FETCH_MAX_REDIRECTS", "0", 0),
        ("FETCH_TIMEOUT", "2.5", 2.5),
        ("DATA_DIR", "/srv/x", Path("/srv/x")),
        ("MAX_TASKS", "   ", 32),  # blank: the default
        ("ENGINE", " ONNX ", "onnx"),
        ("CPU_PRECISION", "INT8", "int8"),
        ("JPEG_DRAFT", "on", True),
        ("EXTRA_CLIP", "ViT-L-14/openai, rn=RN50x16/openai", ("ViT-L-14/openai", "rn=RN50x16/openai")),
    ],
)
def test_good_values(clean_env, name, raw, value):
    clean_env.setenv(ENV_PREFIX + name, raw)
    assert getattr(load_settings(), name.lower()) == value


def test_names_are_case_insensitive(clean_env):
    clean_env.setenv("image_embed_max_items", "7")
    assert load_settings().max_items == 7


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("PROFILE", "huge", "is unknown. Choose one of: default: "),  # a choice: the values, explained
        ("DEVICE", "gpu", "is not one of auto, cpu, cuda"),
        ("REQUIRE_GPU", "maybe", "use 1, true, yes, on, 0, false, no, off"),  # a flag
        ("JPEG_DRAFT", "fast", "use 1, true, yes, on, 0, false, no, off"),
        ("MAX_ITEMS", "lots", "not an integer"),  # an integer
        ("MAX_ITEMS", "0", "use an integer >= 1"),  # out of range
        ("FETCH_TIMEOUT", "soon", "not a number"),  # a number
        ("FETCH_TIMEOUT", "0", "seconds > 0"),
        ("INTERNVIT_TILES", "2by2", "must look like 2x2"),  # a structured value
        ("INTERNVIT_LEVEL_WEIGHTS", "1,2", "three numbers"),
        ("URL_ALLOWLIST", "ok.host, a/b", "'a/b' is not a host"),  # one bad list entry
        ("INDEX_KIND", "lsh", "is not one of ivfpq, hnsw"),
        ("ENGINE", "tensorrt", "is not one of auto, onnx, torch"),
        ("CPU_PRECISION", "fp16", "is not one of fp32, int8"),
        ("EXTRA_CLIP", "ViT-L-14", "'ViT-L-14' is not [name=]ARCH/TAG"),  # no pretrained tag
        ("EXTRA_CLIP", "Big=ViT-L-14/openai", "is not [name=]ARCH/TAG"),  # a name must be lower case
    ],
)
def test_bad_values_name_variable_value_and_accepted(clean_env, name, raw, says):
    clean_env.setenv(ENV_PREFIX + name, raw)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{ENV_PREFIX}{name}=")
    assert raw.strip() in message and says in message


def test_several_bad_values_are_all_reported(clean_env):
    clean_env.setenv("IMAGE_EMBED_MAX_ITEMS", "x")
    clean_env.setenv("IMAGE_EMBED_ACCESS_LOG", "yaml")
    message = str(pytest.raises(SettingsError, load_settings).value)
    assert "IMAGE_EMBED_MAX_ITEMS='x'" in message and "IMAGE_EMBED_ACCESS_LOG='yaml'" in message


def test_read_once_per_environment(clean_env):
    first = load_settings()
    assert load_settings() is first  # parsed once while the environment stays the same
    clean_env.setenv("IMAGE_EMBED_MAX_ITEMS", "9")
    assert load_settings().max_items == 9
    with pytest.raises(Exception):
        first.max_items = 1  # frozen: a view cannot drift from the environment


def test_unknown_variables_are_named_in_a_warning(clean_env, caplog):
    clean_env.setenv("IMAGE_EMBED_MAX_ITEM", "8")  # a typo of MAX_ITEMS
    with caplog.at_level("WARNING", logger="image_embed.config"):
        assert load_settings().max_items == 64
    assert "IMAGE_EMBED_MAX_ITEM" in caplog.text
