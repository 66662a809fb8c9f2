"""Errors of the search engine. Each carries an HTTP status and a machine-readable code so
the runner can hand it to the gateway unchanged (`to_json`)."""

from __future__ import annotations


class SearchError(Exception):
    status: int = 400
    code: str = "index_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def to_json(self) -> dict:
        return {"error": self.code, "detail": self.detail, "status": self.status}


class InvalidItem(SearchError):
    """A key, vector, metadata object, filter or index name the engine cannot accept."""

    code = "invalid_item"


class IndexNotFound(SearchError):
    status = 404
    code = "index_not_found"


class KeyNotFound(SearchError):
    status = 404
    code = "key_not_found"


class ManifestMismatch(SearchError):
    """An index is bound to another model, dimension, metric or normalization."""

    status = 409
    code = "index_model_mismatch"


class IndexBusy(SearchError):
    """Another process holds the index's lock: one writer per index."""

    status = 503
    code = "index_locked"


class CorruptIndex(SearchError):
    """The files on disk contradict each other (never a torn log tail, which is skipped)."""

    status = 503
    code = "index_corrupt"
