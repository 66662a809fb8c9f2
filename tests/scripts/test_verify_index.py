"""scripts/verify_index.py --data-dir: the structural check straight from the files."""

from __future__ import annotations

import json

import pytest

from scripts.verify_index import main
from search.errors import IndexBusy
from search.store import open_store
from tests.search.helpers import BINDING, vectors_for


def test_offline_check(tmp_path, capsys):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    store.upsert(["a", "b"], vectors_for(["a", "b"]))
    store.close()
    assert main(["--data-dir", str(tmp_path), "--index", "ix"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"index": "ix", "ok": True, "count": 2, "problems": []}


def test_offline_check_refuses_a_running_server(tmp_path):
    store = open_store(tmp_path, "ix", BINDING, create=True)
    try:
        with pytest.raises(IndexBusy):
            main(["--data-dir", str(tmp_path), "--index", "ix"])
    finally:
        store.close()
