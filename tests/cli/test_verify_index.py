"""image-embed verify-index without a server: the structural check straight from the
database, on both back ends."""

from __future__ import annotations

import json

import pytest

from cli.verify_index import main
from search.errors import IndexBusy
from search.sqlite_store import open_store
from tests.search.backends import BACKENDS, new_place, open_indexes
from tests.search.helpers import BINDING, vectors_for


@pytest.mark.parametrize("backend", BACKENDS)
def test_offline_check(tmp_path, capsys, backend):
    place = new_place(backend, tmp_path)
    registry = open_indexes(place)
    registry.get("ix", BINDING, create=True).upsert(["a", "b"], vectors_for(["a", "b"]))
    registry.close()
    flag = "--search-url" if backend == "postgresql" else "--data-dir"
    assert main([flag, place, "--index", "ix"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"index": "ix", "ok": True, "count": 2, "problems": []}


def test_offline_check_refuses_a_running_server(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    try:
        with pytest.raises(IndexBusy):
            main(["--data-dir", str(tmp_path), "--index", "ix"])
    finally:
        store.close()
