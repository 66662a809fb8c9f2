"""The routes of the five services this server replaces, with their JSON shapes (docs/api.md's
compatibility table says which service had which).

- URL extraction: POST /embedding/fast_extract (DINOv2 ViT-g/14: `dinov2_giant`, 1536 floats)
  and POST /embedding/test_extract (InternViT: the simple extractor, or the three-level
  `combined` vector with IMAGE_EMBED_TEST_EXTRACT=combined), body {"url"} -> {"embedding", "url"}.
- CLIP for pgvector: POST /embed-image (multipart `file`) -> {"embedding",
  "model": "CLIP-ViT-B/32", "device"}.
- Search by HTTP GET: GET /search/text, GET /image/{key}/similar and GET /stats, aliases of the
  search APIs (same answers, same errors); the gallery's GET /browse, POST /rating/{image_id},
  GET /tags and POST /tags/bulk over the library (gateway/library.py; image_id is the item's
  key, which may contain "/").
- Analysis by URL or upload (POST /analyze_image/, /analyze_image_upload/) lives in
  gateway/analyze/.

URLs go through the intake's safe fetch (public addresses only, size and time limits).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import JSONResponse, Response

from config.settings import Settings, load_settings
from intake.errors import ClientError
from models import get_spec

from .bound import bound
from .encode import EncodeRoutes
from .errors import api_errors
from .images import ImageLoader, ImageRef, upload_name
from .index_admin import IndexAdminRoutes
from .internvit import InternVitRoutes
from .library import LibraryRoutes, label_filter, parse_tag_ids
from .runner_client import RunnerClient
from .schemas import EmbedImageResponse
from .search import SearchRoutes

EMBED_IMAGE_MODEL_NAME = "CLIP-ViT-B/32"  # the model name POST /embed-image has always answered
FAST_EXTRACT_MODEL = "dinov2_giant"


def extract_mode_setting(settings: Settings | None = None) -> str:
    return (settings or load_settings()).test_extract


class ExtractResponse(BaseModel):
    """The answer of /embedding/fast_extract and /embedding/test_extract."""

    embedding: list[float] = Field(description="L2-normalized vector")
    url: str = Field(description="the URL as sent")


def _url_ref(url: str) -> ImageRef:
    if not url.strip():
        raise ClientError("send an http(s) image URL in `url`", code="missing_image")
    return ImageRef(url=url, label=f"url:{url}")


class CompatRoutes:
    def __init__(
        self,
        runners: RunnerClient,
        images: ImageLoader,
        encode: EncodeRoutes,
        internvit: InternVitRoutes,
        test_extract_mode: str,
    ) -> None:
        self.runners = runners
        self.images = images
        self.encode = encode
        self.internvit = internvit
        self.test_extract_mode = test_extract_mode

    async def fast_extract(self, url: str) -> ExtractResponse:
        self.runners.require(FAST_EXTRACT_MODEL)
        pixels = await self.images.load_for_model(_url_ref(url), get_spec(FAST_EXTRACT_MODEL))
        vectors = await self.runners.embed_images(FAST_EXTRACT_MODEL, pixels[None])
        return ExtractResponse(embedding=vectors[0].tolist(), url=url)

    async def test_extract(self, url: str) -> ExtractResponse:
        ref = _url_ref(url)
        if self.test_extract_mode == "combined":
            vector = (await self.internvit.three_levels(ref)).combined
        else:
            vector = await self.internvit.simple(ref)
        return ExtractResponse(embedding=vector, url=url)

    async def embed_image(self, file: Path) -> EmbedImageResponse:
        vector = await self.encode.image_vector(ImageRef(upload=file, label=f"upload:{upload_name(file)}"))
        info = await self.runners.cached_info("clip")
        return EmbedImageResponse(embedding=vector, model=EMBED_IMAGE_MODEL_NAME, device=info["device"])


def known_query_only(request: Request) -> None:
    """A query parameter the route does not take is a 400 naming it (a typo such as `topk=5`
    would otherwise be ignored silently)."""
    route = request.scope.get("route")
    if route is None:
        return
    known, dependants = set(), [route.dependant]
    while dependants:  # the route's own parameters and those of its dependencies
        dependant = dependants.pop()
        known |= {param.alias for param in dependant.query_params}
        dependants.extend(dependant.dependencies)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        message = f"unknown query parameter; this route takes: {takes}"
        raise RequestValidationError([{"loc": ("query", name), "msg": message, "type": "extra_forbidden"} for name in unknown])


# The search service's read routes (GET), mounted beside the BentoML APIs by gateway/web.py.
search_aliases = APIRouter(dependencies=[Depends(known_query_only)])


async def _answer(method, *args) -> Response:
    result = await api_errors(method)(*args)
    return result if isinstance(result, Response) else JSONResponse(result.model_dump())


@search_aliases.get("/search/text", summary="Text search (alias of POST /search_text)")
async def search_text_get(q: str, top_k: int = 20, index: str = "default", search: SearchRoutes = bound(SearchRoutes)):
    return await _answer(search.text, q, top_k, None, None, index)


@search_aliases.get("/image/{key:path}/similar", summary="Items similar to one (alias of POST /similar)")
async def similar_get(key: str, top_k: int = 20, index: str = "default", search: SearchRoutes = bound(SearchRoutes)):
    return await _answer(search.similar, key, top_k, None, None, index)


@search_aliases.get("/stats", summary="Index statistics (alias of POST /index_stats)")
async def stats_get(index: str = "default", admin: IndexAdminRoutes = bound(IndexAdminRoutes)):
    return await _answer(admin.stats, index)


# The gallery's routes over the library (ratings, tags, hiding).
class AnyPathConvertor(Convertor):
    """A path parameter that may hold any character, "/" and line breaks included (Starlette's
    `path` stops at a line break, and a key may contain one)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPathConvertor())


class RatingBody(BaseModel):
    rating: int = Field(description="0 (not rated) to 5")


class BulkTagsBody(BaseModel):
    image_ids: list[str] = Field(description="the items' keys")
    add: list[str] = Field(default_factory=list, description="tag names to add (created when new)")
    remove: list[str] = Field(default_factory=list, description="tag names to remove")
    hidden: bool | None = Field(default=None, description="true: hide them, false: unhide them")


async def _browse(
    library: LibraryRoutes, index: str, page: int, per_page: int, min_rating: int, tag_ids: str, include_hidden: bool
):
    labels = label_filter(min_rating, parse_tag_ids(tag_ids), include_hidden)
    return await library.browse(index, page, per_page, labels)


@search_aliases.get("/browse", summary="A page of the index in key order, with ratings and tags (as POST /browse)")
async def browse_get(
    page: int = 1, per_page: int = 24, min_rating: int = 0, tag_ids: str = "", include_hidden: bool = False,
    index: str = "default", library: LibraryRoutes = bound(LibraryRoutes),
):
    return await _answer(_browse, library, index, page, per_page, min_rating, tag_ids, include_hidden)


@search_aliases.post("/rating/{image_id:anypath}", summary="Rate one item (0-5); 404 for an unknown key")
async def rating_post(
    image_id: str, body: RatingBody, index: str = "default", library: LibraryRoutes = bound(LibraryRoutes)
):
    return await _answer(library.rate_one, image_id, body.rating, index)


@search_aliases.get("/tags", summary="The tags, with how many items carry each (as POST /tags)")
async def tags_get(index: str = "default", library: LibraryRoutes = bound(LibraryRoutes)):
    return await _answer(library.tags, index)


@search_aliases.api_route("/browse", methods=["OPTIONS"], include_in_schema=False)
@search_aliases.api_route("/tags", methods=["OPTIONS"], include_in_schema=False)
async def both_methods(request: Request) -> JSONResponse:
    """GET (here) and POST (the BentoML API) share these paths: a 405 that names both (the
    API's own route would name POST alone)."""
    detail = f"{request.method} {request.url.path}: use GET or POST"
    return JSONResponse({"error": "method_not_allowed", "detail": detail}, status_code=405, headers={"Allow": "GET, POST"})


@search_aliases.post("/tags/bulk", summary="Add and remove tags by name, hide or unhide, for many items")
async def tags_bulk(body: BulkTagsBody, index: str = "default", library: LibraryRoutes = bound(LibraryRoutes)):
    return await _answer(library.tag_items, body.image_ids, body.add, body.remove, body.hidden, index)
