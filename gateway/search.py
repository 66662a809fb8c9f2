"""Search: index images, search by text / image / vector / key.

Images are embedded here (the same path as encode_images), vectors go to the index runner,
which owns the data. Every index is bound to the model that filled it: `index_images` into a
new index takes `model` (default clip), and searches by text or image embed with the index's
own model. A request with another model's vectors gets a 409 naming both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from config.sections import ThumbnailSettings
from intake.errors import ClientError
from models.registry import find_by_store_tag
from models.specs import ModelSpec
from search.perceptual_hash import as_hex

from .encode import DEFAULT_MODEL, EncodeRoutes
from .images import ImageLoader, ImageRef, upload_name
from .runner_client import RunnerClient
from .schemas import ItemError
from .search_schemas import IndexedItem, IndexImagesResponse, SearchHit, SearchResponse
from .thumbnails import encode_for_runner

DEFAULT_INDEX = "default"
MAX_TOP_K = 10_000
MAX_OFFSET = 10_000
MAX_EXAMPLES = 1_000


def item_keys(refs: list[ImageRef], keys: list[str]) -> list[str | None]:
    """The key of each image: as given, else the URL, else the upload's file name."""
    if keys:
        if len(keys) != len(refs):
            raise ClientError(f"{len(keys)} keys for {len(refs)} images: send one key per image, or none", code="bad_keys")
        return list(keys)
    return [ref.url if ref.url else upload_name(ref.upload) if ref.upload else None for ref in refs]


def binding_of(spec: ModelSpec) -> dict[str, Any]:
    """What an index of `spec`'s vectors is bound to (search/manifest.py)."""
    return {"model": spec.store_tag, "dim": spec.output_dim, "metric": "ip", "normalized": True}


async def index_model(
    runners: RunnerClient, index: str, model: str | None = None, what: str = "this request"
) -> ModelSpec:
    """The model to embed with for `index`: `model` when given (a new index is bound to it; an
    existing one must already be), else the model the index was created with when this server
    serves it, else clip (an index of another model then answers 409 naming both)."""
    if model is not None:
        return runners.embedding_spec(model, what=what)
    try:
        bound = await runners.index.binding(index=index)
    except ClientError as exc:
        if exc.code != "index_not_found":
            raise
        bound = {}
    spec = find_by_store_tag(bound["model"]) if bound else None
    if spec is not None and spec.key in runners.embedding_models():
        return spec
    return runners.embedding_spec(DEFAULT_MODEL, what=what)


def check_top_k(top_k: int) -> int:
    if not 1 <= top_k <= MAX_TOP_K:
        raise ClientError(f"top_k must be between 1 and {MAX_TOP_K}", code="bad_top_k")
    return top_k


def check_offset(offset: int) -> int:
    if not 0 <= offset <= MAX_OFFSET:
        raise ClientError(f"offset must be between 0 and {MAX_OFFSET}", code="bad_offset")
    return offset


class SearchRoutes:
    """Search over the index runner; CLIP vectors from EncodeRoutes."""

    def __init__(
        self,
        runners: RunnerClient,
        images: ImageLoader,
        encode: EncodeRoutes,
        thumbnails: ThumbnailSettings = ThumbnailSettings(),
    ) -> None:
        self.runners = runners
        self.images = images
        self.encode = encode
        self.thumbnails = thumbnails

    async def model_of(self, index: str, model: str | None = None, what: str = "this request") -> ModelSpec:
        return await index_model(self.runners, index, model, what)

    async def vectors(
        self,
        vectors: np.ndarray,
        index: str,
        top_k: int,
        min_score: float | None,
        filter: dict | None,
        offset: int = 0,
        spec: ModelSpec | None = None,
        labels: dict | None = None,
    ) -> SearchResponse:
        """Search with vectors of `spec`'s space; without `spec`, vectors of the caller's own
        (search_vector): the index checks only their dimension."""
        answer = await self.runners.index.search(
            index=index,
            binding=None if spec is None else binding_of(spec),
            vectors=np.asarray(vectors, dtype=np.float32),
            top_k=check_top_k(top_k),
            min_score=min_score,
            filter=filter,
            offset=check_offset(offset),
            labels=labels,
        )
        return SearchResponse(index=index, results=[SearchHit(**h) for h in answer["results"][0]])

    async def index_images(
        self,
        refs: list[ImageRef],
        keys: list[str],
        metadata: list[dict[str, Any] | None],
        index: str,
        model: str | None = None,
    ) -> IndexImagesResponse:
        from search.errors import InvalidItem
        from search.items import check_key, normalize_metadata

        spec = await self.model_of(index, model, "indexing images")
        keys_ = item_keys(refs, keys)
        if metadata and len(metadata) != len(refs):
            raise ClientError(f"{len(metadata)} metadata objects for {len(refs)} images", code="bad_metadata")
        metas = list(metadata) or [None] * len(refs)
        problems: dict[int, ClientError] = {}
        for i, (key, meta) in enumerate(zip(keys_, metas)):
            try:
                if key is None:
                    raise InvalidItem("a base64 image needs a key (send `keys`)")
                check_key(key)
                metas[i] = normalize_metadata(meta)
            except InvalidItem as exc:
                problems[i] = ClientError(exc.detail, code="invalid_item")
        todo = [i for i in range(len(refs)) if i not in problems]
        thumbnail_px = self.thumbnails.thumbnail_size if self.thumbnails.thumbnails else None
        embedded, parts = await self.encode.embed_for_index([refs[i] for i in todo], thumbnail_px, spec) if todo else ([], [])
        parts_of = dict(zip(todo, parts))
        for i, item in zip(todo, embedded):
            if isinstance(item, ClientError):
                problems[i] = item
        ok = [i for i in todo if i not in problems]
        vectors = {i: vec for i, vec in zip(todo, embedded) if i in ok}
        total = None
        if ok:
            answer = await self.runners.index.upsert(
                index=index,
                binding=binding_of(spec),
                keys=[keys_[i] for i in ok],
                vectors=np.stack([vectors[i] for i in ok]),
                metadata=[metas[i] for i in ok],
                sources=[refs[i].url for i in ok],
                thumbnails=encode_for_runner([parts_of[i][0] for i in ok]),
                phashes=[as_hex(parts_of[i][1]) for i in ok],
            )
            total = answer["total"]
        else:
            total = await self._count_or_zero(index)
        results = [
            IndexedItem(
                position=i,
                key=keys_[i],
                source=ref.label,
                indexed=i not in problems,
                error=ItemError(**problems[i].to_json()) if i in problems else None,
            )
            for i, ref in enumerate(refs)
        ]
        return IndexImagesResponse(
            index=index,
            model=spec.display_name,
            indexed=len(ok),
            failed=len(problems),
            total=total,
            results=results,
        )

    async def _count_or_zero(self, index: str) -> int:
        try:
            return int((await self.runners.index.stats(index=index))["count"])
        except ClientError:
            return 0

    async def text(self, query: str, top_k: int, min_score, filter, index: str, offset: int = 0, labels=None) -> SearchResponse:
        spec = await self.model_of(index)
        vectors = await self.encode.text_vectors([query], spec.key)
        return await self.vectors(vectors, index, top_k, min_score, filter, offset, spec=spec, labels=labels)

    async def image(self, ref: ImageRef, top_k: int, min_score, filter, index: str, offset: int = 0, labels=None) -> SearchResponse:
        spec = await self.model_of(index, what="searching by image")
        pixels = await self.images.load_for_model(ref, spec)
        vectors = await self.runners.embed_images(spec.key, pixels[None])
        return await self.vectors(vectors, index, top_k, min_score, filter, offset, spec=spec, labels=labels)

    async def vector(self, vector: list[float], top_k: int, min_score, filter, index: str, offset: int = 0, labels=None) -> SearchResponse:
        return await self.vectors(np.asarray([vector], np.float32), index, top_k, min_score, filter, offset, labels=labels)

    async def similar(
        self, key: str | None, top_k: int, min_score, filter, index: str,
        *, keys: list[str] = (), negative_keys: list[str] = (), offset: int = 0, labels=None,
    ) -> SearchResponse:
        """Items like `key`, or like the normalized mean of `keys` minus that of `negative_keys`."""
        if not key and not keys:
            raise ClientError("send `key` or `keys`: the items to find similar ones to", code="missing_key")
        if len(keys) + len(negative_keys) > MAX_EXAMPLES:
            raise ClientError(f"at most {MAX_EXAMPLES} example keys in one call", code="too_many_items")
        answer = await self.runners.index.similar(
            index=index,
            key=key or None,
            keys=list(keys),
            negative_keys=list(negative_keys),
            top_k=check_top_k(top_k),
            min_score=min_score,
            filter=filter,
            offset=check_offset(offset),
            labels=labels,
        )
        return SearchResponse(index=index, results=[SearchHit(**h) for h in answer["results"]])
