"""Gateway search helpers: default keys, top_k bounds, the index runner's refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.images import ImageRef
from gateway.runner_client import IndexClient
from gateway.search import check_offset, check_top_k, item_keys
from intake.errors import ClientError


def test_default_keys_are_urls_and_file_names():
    refs = [
        ImageRef(upload=Path("/tmp/tmpabcd1234cat.jpg")),
        ImageRef(url="https://example.com/a.png"),
        ImageRef(base64="AAAA"),
    ]
    assert item_keys(refs, []) == ["cat.jpg", "https://example.com/a.png", None]
    assert item_keys(refs, ["x", "y", "z"]) == ["x", "y", "z"]
    with pytest.raises(ClientError) as err:
        item_keys(refs, ["x"])
    assert err.value.code == "bad_keys"


@pytest.mark.parametrize("top_k", [0, -1, 10_001])
def test_top_k_bounds(top_k):
    with pytest.raises(ClientError):
        check_top_k(top_k)
    assert check_top_k(1) == 1 and check_top_k(10_000) == 10_000


@pytest.mark.parametrize("offset", [-1, 10_001])
def test_offset_bounds(offset):
    with pytest.raises(ClientError):
        check_offset(offset)
    assert check_offset(0) == 0 and check_offset(10_000) == 10_000


class _Runner:
    def __init__(self, answer):
        self.answer = answer

    @property
    def to_async(self):
        return self

    async def stats(self, **kwargs):
        return self.answer


def test_runner_refusals_keep_their_status_and_code():
    index = IndexClient(_Runner({"error": "index_model_mismatch", "detail": "other model", "status": 409}))
    with pytest.raises(ClientError) as err:
        asyncio.run(index.stats(index="x"))
    assert (err.value.status, err.value.code, err.value.detail) == (409, "index_model_mismatch", "other model")
    assert asyncio.run(IndexClient(_Runner({"count": 3})).stats(index="x")) == {"count": 3}
