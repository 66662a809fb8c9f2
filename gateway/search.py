"""Search APIs: index images, search by text / image / vector / key, and seed 003's routes.

Images are embedded here with the CLIP runner (the same path as encode_images), vectors
go to the index runner, which owns the data. Every index is bound to the CLIP model that
filled it: a server with another CLIP model gets a 409 naming both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml
import numpy as np

from intake.errors import ClientError

from .encode import Text
from .errors import api_errors, call_runner
from .images import ImageRef, many_refs, single_ref, upload_name
from .schemas import ItemError
from .search_schemas import IndexedItem, IndexImagesResponse, SearchHit, SearchResponse

DEFAULT_INDEX = "default"
MAX_TOP_K = 1000


def item_keys(refs: list[ImageRef], keys: list[str]) -> list[str | None]:
    """The key of each image: as given, else the URL, else the upload's file name."""
    if keys:
        if len(keys) != len(refs):
            raise ClientError(f"{len(keys)} keys for {len(refs)} images: send one key per image, or none", code="bad_keys")
        return list(keys)
    return [ref.url if ref.url else upload_name(ref.upload) if ref.upload else None for ref in refs]


def check_top_k(top_k: int) -> int:
    if not 1 <= top_k <= MAX_TOP_K:
        raise ClientError(f"top_k must be between 1 and {MAX_TOP_K}", code="bad_top_k")
    return top_k


class SearchAPI:
    """Mixin: needs `self.index` (the index runner) and EncodeAPI's CLIP helpers."""

    def clip_binding(self) -> dict[str, Any]:
        spec = self.clip_spec
        return {"model": spec.store_tag, "dim": spec.output_dim, "metric": "ip", "normalized": True}

    async def index_call(self, method: str, **kwargs: Any) -> dict:
        """Call the index runner; its refusals become 4xx (or 503) with their own code."""
        result = await call_runner("index", getattr(self.index.to_async, method)(**kwargs))
        if isinstance(result, dict) and "error" in result and "status" in result:
            raise ClientError(result["detail"], status=int(result["status"]), code=result["error"])
        return result

    async def search_vectors(
        self, vectors: np.ndarray, index: str, top_k: int, min_score: float | None, filter: dict | None
    ) -> SearchResponse:
        answer = await self.index_call(
            "search",
            index=index,
            binding=self.clip_binding(),
            vectors=np.asarray(vectors, dtype=np.float32),
            top_k=check_top_k(top_k),
            min_score=min_score,
            filter=filter,
        )
        return SearchResponse(index=index, results=[SearchHit(**h) for h in answer["results"][0]])

    @bentoml.api
    @api_errors
    async def index_images(
        self,
        images: list[Path] = [],
        urls: list[str] = [],
        images_base64: list[str] = [],
        keys: list[str] = [],
        metadata: list[dict[str, Any] | None] = [],
        index: str = DEFAULT_INDEX,
    ) -> IndexImagesResponse:
        """Embed images with CLIP and add them to an index (created on first use), by key.

        Images: uploads in `images`, then `urls`, then `images_base64` (up to 64 in all).
        `keys`: one per image (default: the URL, or the upload's file name); an existing key
        is replaced. `metadata`: optional, one JSON object per image. An image that fails
        gets an `error` in its result and the others are still indexed; all of them are
        durable when the call returns.
        """
        from search.errors import InvalidItem
        from search.items import check_key, normalize_metadata

        refs = many_refs(images, urls, images_base64, self.limits.max_items)
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
        embedded = await self.clip_embed_refs([refs[i] for i in todo]) if todo else []
        for i, item in zip(todo, embedded):
            if isinstance(item, ClientError):
                problems[i] = item
        ok = [i for i in todo if i not in problems]
        vectors = {i: vec for i, vec in zip(todo, embedded) if i in ok}
        total = None
        if ok:
            answer = await self.index_call(
                "upsert",
                index=index,
                binding=self.clip_binding(),
                keys=[keys_[i] for i in ok],
                vectors=np.stack([vectors[i] for i in ok]),
                metadata=[metas[i] for i in ok],
                sources=[refs[i].url for i in ok],
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
            model=self.clip_spec.display_name,
            indexed=len(ok),
            failed=len(problems),
            total=total,
            results=results,
        )

    async def _count_or_zero(self, index: str) -> int:
        try:
            return int((await self.index_call("stats", index=index))["count"])
        except ClientError:
            return 0

    @bentoml.api
    @api_errors
    async def search_text(
        self,
        query: Text,
        top_k: int = 10,
        min_score: float | None = None,
        filter: dict[str, Any] | None = None,
        index: str = DEFAULT_INDEX,
    ) -> SearchResponse:
        """Images that match a text (CLIP text tower), best first: `[{key, score, metadata}]`.

        `min_score`: drop results below this cosine similarity. `filter`: metadata fields
        that must be equal, e.g. {"album": "2023"}.
        """
        return await self.run_search_text(query, top_k, min_score, filter, index)

    async def run_search_text(self, query: str, top_k: int, min_score, filter, index: str) -> SearchResponse:
        vectors = await self.clip_text_vectors(self._check_texts([query]))
        return await self.search_vectors(vectors, index, top_k, min_score, filter)

    @bentoml.api
    @api_errors
    async def search_image(
        self,
        image: Path = None,  # type: ignore[assignment]
        url: str | None = None,
        image_base64: str | None = None,
        top_k: int = 10,
        min_score: float | None = None,
        filter: dict[str, Any] | None = None,
        index: str = DEFAULT_INDEX,
    ) -> SearchResponse:
        """Images similar to one image: send exactly one of `image` (upload), `url` or
        `image_base64`."""
        pixels = await self.images.load_for_model(single_ref(image, url, image_base64), self.clip_spec)
        vectors = await self.clip_image_vectors(pixels[None])
        return await self.search_vectors(vectors, index, top_k, min_score, filter)

    @bentoml.api(route="/search/image")
    @api_errors
    async def search_image_file(self, file: Path, top_k: int = 20, index: str = DEFAULT_INDEX) -> SearchResponse:
        """Seed 003's route: multipart `file` -> results best first (default top_k 20)."""
        ref = ImageRef(upload=file, label=f"upload:{upload_name(file)}")
        pixels = await self.images.load_for_model(ref, self.clip_spec)
        return await self.search_vectors(await self.clip_image_vectors(pixels[None]), index, top_k, None, None)

    @bentoml.api
    @api_errors
    async def search_vector(
        self,
        vector: list[float],
        top_k: int = 10,
        min_score: float | None = None,
        filter: dict[str, Any] | None = None,
        index: str = DEFAULT_INDEX,
    ) -> SearchResponse:
        """Search with a vector of your own (512 floats in CLIP's space; it is normalized)."""
        return await self.search_vectors(np.asarray([vector], np.float32), index, top_k, min_score, filter)

    @bentoml.api
    @api_errors
    async def similar(
        self,
        key: str,
        top_k: int = 10,
        min_score: float | None = None,
        filter: dict[str, Any] | None = None,
        index: str = DEFAULT_INDEX,
    ) -> SearchResponse:
        """Items similar to the item stored under `key` (itself excluded)."""
        return await self.run_similar(key, top_k, min_score, filter, index)

    async def run_similar(self, key: str, top_k: int, min_score, filter, index: str) -> SearchResponse:
        answer = await self.index_call(
            "similar", index=index, key=key, top_k=check_top_k(top_k), min_score=min_score, filter=filter
        )
        return SearchResponse(index=index, results=[SearchHit(**h) for h in answer["results"]])
