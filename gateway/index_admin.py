"""Index management: delete, get, index_stats, find_duplicates, verify_index and drop_index."""

from __future__ import annotations

import numpy as np

from intake.errors import ClientError

from .encode import EncodeRoutes
from .images import ImageRef
from .runner_client import RunnerClient
from .schemas import ItemError
from .search import index_model
from .search_schemas import (
    DeleteResponse,
    DropIndexResponse,
    DuplicateGroup,
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


def check_keys(keys: list[str]) -> list[str]:
    if not keys:
        raise ClientError("send at least one key in `keys`", code="missing_key")
    if len(keys) > MAX_KEYS:
        raise ClientError(f"{len(keys)} keys in one call; the limit is {MAX_KEYS}", code="too_many_items")
    return keys


class IndexAdminRoutes:
    def __init__(self, runners: RunnerClient, encode: EncodeRoutes, max_items: int) -> None:
        self.runners = runners
        self.encode = encode
        self.max_items = max_items

    async def delete(self, keys: list[str], index: str) -> DeleteResponse:
        answer = await self.runners.index.delete(index=index, keys=check_keys(keys))
        return DeleteResponse(index=index, **answer)

    async def drop(self, index: str) -> DropIndexResponse:
        await self.runners.index.drop_index(index=index)
        return DropIndexResponse(index=index, dropped=True)

    async def get(self, keys: list[str], index: str, with_vectors: bool) -> GetResponse:
        answer = await self.runners.index.get_items(index=index, keys=check_keys(keys), with_vectors=with_vectors)
        items = [StoredItem(**it) for it in answer["items"] if it is not None]
        missing = [k for k, it in zip(keys, answer["items"]) if it is None]
        return GetResponse(index=index, items=items, missing=missing)

    async def stats(self, index: str) -> IndexStats:
        s = await self.runners.index.stats(index=index)
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

    async def duplicates(
        self, threshold: float, limit: int, index: str, method: str = "clip", max_distance: int = 5, include_hidden: bool = False
    ) -> DuplicatesResponse:
        if not 0 < limit <= 10_000:
            raise ClientError("limit must be between 1 and 10000", code="bad_limit")
        if method not in ("clip", "phash"):
            raise ClientError(f'method is "clip" or "phash", not {method!r:.40}', code="bad_method")
        answer = await self.runners.index.duplicates(
            index=index, method=method, threshold=threshold, max_distance=max_distance, limit=limit, include_hidden=include_hidden
        )
        clip = method == "clip"
        return DuplicatesResponse(
            index=index,
            method=method,
            threshold=threshold if clip else None,
            max_distance=None if clip else max_distance,
            pairs=[DuplicatePair(**p) for p in answer["pairs"]],
            groups=[DuplicateGroup(**g) for g in answer["groups"]],
        )

    async def verify(self, sample: int, refs: list[ImageRef], keys: list[str], index: str) -> VerifyResponse:
        """Structure (the index runner's check), then content: stored vectors against fresh
        vectors (the index's model) of re-fetched sources and of the images sent, cosine >= 0.999 each."""
        if not 0 <= sample <= 256:
            raise ClientError("sample must be between 0 and 256", code="bad_sample")
        if len(keys) != len(refs):
            raise ClientError(f"{len(keys)} keys for {len(refs)} images: one key per image", code="bad_keys")
        spec = await index_model(self.runners, index, what="verifying an index")
        report = await self.runners.index.check(index=index, sample=sample)
        pairs: list[tuple[str, ImageRef, np.ndarray | None]] = [
            (s["key"], ImageRef(url=s["source"], label=f"url:{s['source']}"), np.asarray(s["vector"], np.float32))
            for s in report["sample"]
        ]
        if refs:
            stored = await self.runners.index.get_items(index=index, keys=list(keys), with_vectors=True)
            for key, ref, item in zip(keys, refs, stored["items"]):
                pairs.append((key, ref, None if item is None else np.asarray(item["vector"], np.float32)))
        mismatches, unreachable, cosines = [], [], []
        for start in range(0, len(pairs), self.max_items):
            chunk = pairs[start : start + self.max_items]
            fresh = await self.encode.embed_refs([ref for _, ref, _ in chunk], spec)
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
