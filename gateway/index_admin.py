"""Index management APIs: delete, get, index_stats, find_duplicates and verify_index."""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np

from intake.errors import ClientError

from .errors import api_errors
from .images import ImageRef, many_refs
from .schemas import ItemError
from .search import DEFAULT_INDEX
from .search_schemas import (
    DeleteResponse,
    DuplicatePair,
    DuplicatesResponse,
    GetResponse,
    IndexStats,
    StoredItem,
    VerifiedItem,
    VerifyResponse,
)

VERIFY_MIN_COSINE = 0.999
MAX_KEYS = 10_000


def _check_keys(keys: list[str]) -> list[str]:
    if not keys:
        raise ClientError("send at least one key in `keys`", code="missing_key")
    if len(keys) > MAX_KEYS:
        raise ClientError(f"{len(keys)} keys in one call; the limit is {MAX_KEYS}", code="too_many_items")
    return keys


class IndexAdminAPI:
    """Mixin: needs SearchAPI's `index_call` and EncodeAPI's `clip_embed_refs`."""

    @bentoml.api
    @api_errors
    async def delete(self, keys: list[str], index: str = DEFAULT_INDEX) -> DeleteResponse:
        """Delete items by key (durable when it returns); unknown keys are listed in `missing`."""
        answer = await self.index_call("delete", index=index, keys=_check_keys(keys))
        return DeleteResponse(index=index, **answer)

    @bentoml.api
    @api_errors
    async def get(self, keys: list[str], index: str = DEFAULT_INDEX, with_vectors: bool = False) -> GetResponse:
        """Items by key: metadata, source (the URL it was indexed from) and optionally the
        stored vector; unknown keys are listed in `missing`. A cheap "is it indexed?" check."""
        answer = await self.index_call("get_items", index=index, keys=_check_keys(keys), with_vectors=with_vectors)
        items = [StoredItem(**it) for it in answer["items"] if it is not None]
        missing = [k for k, it in zip(keys, answer["items"]) if it is None]
        return GetResponse(index=index, items=items, missing=missing)

    @bentoml.api
    @api_errors
    async def index_stats(self, index: str = DEFAULT_INDEX) -> IndexStats:
        """Count, dimension, model, index type (exact or approximate), bytes on disk and the
        last snapshot of an index."""
        return await self.run_index_stats(index)

    async def run_index_stats(self, index: str) -> IndexStats:
        s = await self.index_call("stats", index=index)
        return IndexStats(
            index=index,
            count=s["count"],
            dimension=s["dim"],
            model=s["model"],
            metric=s["metric"],
            index_type=s["index_type"],
            bytes_on_disk=s["bytes_on_disk"],
            last_snapshot=s["last_snapshot"],
            details=s,
        )

    @bentoml.api
    @api_errors
    async def find_duplicates(
        self, threshold: float = 0.95, limit: int = 100, index: str = DEFAULT_INDEX
    ) -> DuplicatesResponse:
        """Pairs of items whose cosine similarity is at least `threshold`, most similar first
        (up to `limit` pairs). Every item is compared with its 10 nearest neighbours."""
        if not 0 < limit <= 10_000:
            raise ClientError("limit must be between 1 and 10000", code="bad_limit")
        answer = await self.index_call("duplicates", index=index, threshold=threshold, limit=limit)
        return DuplicatesResponse(index=index, threshold=threshold, pairs=[DuplicatePair(**p) for p in answer["pairs"]])

    @bentoml.api
    @api_errors
    async def verify_index(
        self, sample: int = 16, images: list[Path] = [], keys: list[str] = [], index: str = DEFAULT_INDEX
    ) -> VerifyResponse:
        """Check that keys and vectors are aligned.

        Structure: every key maps to exactly one stored vector (and ids, tombstones and
        norms are sound). Content: up to `sample` random items that were indexed from a URL
        are fetched again (through the same safe intake) and re-embedded; and images you
        send in `images`, with their `keys`, are embedded and compared with what is stored
        under those keys. An item passes at cosine >= 0.999. The server never reads local
        paths: to verify items indexed from files, send the files
        (scripts/verify_index.py --folder does).
        """
        if not 0 <= sample <= 256:
            raise ClientError("sample must be between 0 and 256", code="bad_sample")
        if len(keys) != len(images):
            raise ClientError(f"{len(keys)} keys for {len(images)} images: one key per image", code="bad_keys")
        report = await self.index_call("check", index=index, sample=sample)
        pairs: list[tuple[str, ImageRef, np.ndarray | None]] = [
            (s["key"], ImageRef(url=s["source"], label=f"url:{s['source']}"), np.asarray(s["vector"], np.float32))
            for s in report["sample"]
        ]
        if images:
            refs = many_refs(images, [], [], self.limits.max_items)
            stored = await self.index_call("get_items", index=index, keys=list(keys), with_vectors=True)
            for key, ref, item in zip(keys, refs, stored["items"]):
                pairs.append((key, ref, None if item is None else np.asarray(item["vector"], np.float32)))
        mismatches, unreachable, cosines = [], [], []
        for start in range(0, len(pairs), self.limits.max_items):
            chunk = pairs[start : start + self.limits.max_items]
            fresh = await self.clip_embed_refs([ref for _, ref, _ in chunk])
            for (key, _, stored_vec), new in zip(chunk, fresh):
                if stored_vec is None:
                    mismatches.append(VerifiedItem(key=key, error=ItemError(error="key_not_found", detail="not in the index")))
                elif isinstance(new, ClientError):
                    unreachable.append(VerifiedItem(key=key, error=ItemError(**new.to_json())))
                else:
                    cos = float(np.dot(stored_vec, new) / (np.linalg.norm(stored_vec) * np.linalg.norm(new)))
                    cosines.append(cos)
                    if cos < VERIFY_MIN_COSINE:
                        mismatches.append(VerifiedItem(key=key, cosine=cos))
        return VerifyResponse(
            index=index,
            ok=report["ok"] and not mismatches,
            count=report["count"],
            problems=report["problems"],
            threshold=VERIFY_MIN_COSINE,
            checked=len(cosines),
            min_cosine=min(cosines) if cosines else None,
            mismatches=mismatches,
            unreachable=unreachable,
        )
