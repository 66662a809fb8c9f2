"""The index runner's glue: search errors come back as data, not as 500s."""

from __future__ import annotations

from runners.index import _answers
from search.errors import IndexNotFound, ManifestMismatch


def test_search_errors_become_answers():
    @_answers
    def missing():
        raise IndexNotFound("there is no index named 'x'")

    @_answers
    def mismatch():
        raise ManifestMismatch("bound to another model")

    assert missing() == {"error": "index_not_found", "detail": "there is no index named 'x'", "status": 404}
    assert mismatch()["status"] == 409 and mismatch()["error"] == "index_model_mismatch"


def test_other_errors_are_not_hidden():
    @_answers
    def broken():
        raise RuntimeError("a bug")

    try:
        broken()
    except RuntimeError:
        pass
    else:
        raise AssertionError("a bug was swallowed")
