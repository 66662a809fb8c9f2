"""Collection classifiers: binary logistic-regression heads on embeddings (CLIP by default), in numpy.

image-embed train-classifiers writes them into one directory (IMAGE_EMBED_CLASSIFIERS_DIR):

    best_models.json            {"format": FORMAT, "collections": {"<collection_id>": {"model": "<name>", ...}}}
    <name>.npz                  arrays `coef` (d,) float32 and `intercept` (1,) float32
    <name>.json                 metadata: collection_id, created, metric, score, embedding_model,
                                embedding_dim, threshold, ...

Plain arrays and JSON only (loaded with allow_pickle=False): a classifier file can never run
code. The index is re-read when its modification time changes, so retraining needs no restart.
`classify` embeds with the model a classifier names (`embedding_model`, a store tag: clip's,
or another model of the registry); one of a model this server does not know is refused: its
weights would be meaningless on other vectors. image-embed convert-classifiers writes the
image-analysis service's pickled scikit-learn classifiers in this format, offline.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "image-embed-classifiers/1"
INDEX_FILE = "best_models.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")  # a file stem, never a path
logger = logging.getLogger("image_embed.classifiers")


class ClassifierError(Exception):
    """A classifier exists but cannot be used (unreadable, wrong shape, other embedding model)."""


@dataclass(frozen=True)
class Classifier:
    collection_id: str
    coef: np.ndarray  # (d,) float32
    intercept: float
    threshold: float
    embedding_model: str
    metadata: dict[str, Any]

    def probability(self, vector: np.ndarray) -> float:
        z = float(np.dot(self.coef.astype(np.float64), np.asarray(vector, dtype=np.float64)) + self.intercept)
        # a numerically stable logistic sigmoid
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def predict(self, vector: np.ndarray) -> dict[str, Any]:
        p = self.probability(vector)
        return {"is_in_collection": p >= self.threshold, "probability": p}


def save_classifier(directory: Path, name: str, coef: np.ndarray, intercept: float, metadata: dict[str, Any]) -> None:
    """Write `<name>.npz` and `<name>.json` (used by image-embed train-classifiers and tests)."""
    if not _NAME.match(name):
        raise ValueError(f"invalid classifier name {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    coef = np.asarray(coef, dtype=np.float32).reshape(-1)
    np.savez(directory / f"{name}.npz", coef=coef, intercept=np.asarray([intercept], dtype=np.float32))
    meta = {"threshold": 0.5, **metadata, "embedding_dim": int(coef.shape[0])}
    (directory / f"{name}.json").write_text(json.dumps(meta, indent=2, sort_keys=True))


def update_index(directory: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Point best_models.json at `entries` ({collection_id: {"model": name, ...}}), keeping the
    other collections of an index in this format; written atomically (the server never reads
    a half-written index). Used by image-embed train-classifiers and convert-classifiers."""
    path = Path(directory) / INDEX_FILE
    index: dict[str, Any] = {"format": FORMAT, "collections": {}}
    if path.exists():
        try:
            old = json.loads(path.read_text())
            if old.get("format") == FORMAT:
                index["collections"].update(old.get("collections", {}))
        except (ValueError, AttributeError):
            logger.warning("%s was unreadable; rewriting it", path)
    index["collections"].update(entries)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True))
    os.replace(tmp, path)


def load_classifier(directory: Path, name: str, collection_id: str) -> Classifier:
    if not _NAME.match(name):
        raise ClassifierError(f"invalid model name {name!r} in {INDEX_FILE}")
    try:
        with np.load(directory / f"{name}.npz", allow_pickle=False) as arrays:
            coef = np.asarray(arrays["coef"], dtype=np.float32).reshape(-1)
            intercept = float(np.asarray(arrays["intercept"]).reshape(-1)[0])
        meta = json.loads((directory / f"{name}.json").read_text())
    except (OSError, KeyError, ValueError, IndexError) as exc:
        raise ClassifierError(f"classifier {name!r} is unreadable: {exc}") from None
    if not np.all(np.isfinite(coef)) or not math.isfinite(intercept):
        raise ClassifierError(f"classifier {name!r} has non-finite weights")
    return Classifier(
        collection_id=collection_id,
        coef=coef,
        intercept=intercept,
        threshold=float(meta.get("threshold", 0.5)),
        embedding_model=str(meta.get("embedding_model", "")),
        metadata=meta,
    )


class ClassifierStore:
    """The classifiers of a directory, reloaded when best_models.json changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, dict[str, Any]] = {}
        self._loaded: dict[str, Classifier | ClassifierError] = {}
        self._index_error: str | None = None

    def _refresh(self) -> None:
        index = self.directory / INDEX_FILE
        try:
            st = index.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp and self._stamp is not None:
            return
        self._stamp, self._loaded, self._entries, self._index_error = stamp, {}, {}, None
        if stamp is None:
            return
        try:
            data = json.loads(index.read_text())
            if data.get("format") != FORMAT or not isinstance(data.get("collections"), dict):
                raise ValueError(f"expected {{'format': {FORMAT!r}, 'collections': {{...}}}}")
            self._entries = {str(k): v for k, v in data["collections"].items() if isinstance(v, dict)}
        except (OSError, ValueError, AttributeError) as exc:
            self._index_error = f"{index} is unreadable: {exc}"
            logger.error("classifier index: %s", self._index_error)

    def collection_ids(self) -> list[str]:
        with self._lock:
            self._refresh()
            return sorted(self._entries)

    def get(self, collection_id: str) -> Classifier | None:
        """The best classifier of `collection_id`; None when there is none; ClassifierError
        when it exists but cannot be used."""
        with self._lock:
            self._refresh()
            if self._index_error:
                raise ClassifierError(self._index_error)
            entry = self._entries.get(collection_id)
            if entry is None:
                return None
            if collection_id not in self._loaded:
                try:
                    self._loaded[collection_id] = load_classifier(self.directory, str(entry.get("model")), collection_id)
                except ClassifierError as exc:
                    self._loaded[collection_id] = exc
            found = self._loaded[collection_id]
        if isinstance(found, ClassifierError):
            raise found
        return found

    def check(self, clf: Classifier, embedding_model: str, dim: int) -> None:
        if clf.embedding_model != embedding_model:
            raise ClassifierError(
                f"the classifier of collection {clf.collection_id} was trained on embeddings of "
                f"{clf.embedding_model or 'an unrecorded model'!r}; this server embeds with {embedding_model!r}. "
                "Retrain it with image-embed train-classifiers against this server."
            )
        if clf.coef.shape[0] != dim:
            raise ClassifierError(
                f"the classifier of collection {clf.collection_id} expects {clf.coef.shape[0]}-d vectors, not {dim}-d"
            )
