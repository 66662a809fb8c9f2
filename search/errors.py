"""Errors of the search engine. Each carries an HTTP status and a machine-readable code so
the runner can hand it to the gateway unchanged (`to_json`)."""

from __future__ import annotations

from errors import ServiceError


class SearchError(ServiceError):
    code = "index_error"

    def to_json(self) -> dict:
        """With the status: the index runner hands it to the gateway unchanged."""
        return {**super().to_json(), "status": self.status}


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


class InsufficientStorage(SearchError):
    """The filesystem holding an index is full: the write was not stored, nothing stored before
    is lost, and the same call succeeds once space is freed (the detail names the place)."""

    status = 507
    code = "insufficient_storage"


class BackendUnavailable(SearchError):
    """The search database cannot be reached or used (down, wrong URL, no pgvector): the
    detail names the cause and the fix; the call may succeed once it is fixed."""

    status = 503
    code = "search_backend_unavailable"


class InvalidRating(InvalidItem):
    """A rating that is not an integer from 0 to 5."""

    code = "bad_rating"


class TagNotFound(SearchError):
    """A tag id that the index does not have (in a filter)."""

    status = 404
    code = "tag_not_found"
