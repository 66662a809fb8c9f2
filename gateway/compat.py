"""The routes of the five services this server replaces, with their JSON shapes.

- seed 000 (DINOv2/InternViT extraction): POST /embedding/fast_extract (DINOv2 ViT-g/14, the
  model that service ran: `dinov2_giant`, 1536 floats) and POST /embedding/test_extract
  (InternViT: the simple extractor, or the three-level `combined` vector with
  IMAGE_EMBED_TEST_EXTRACT=combined), body {"url"} -> {"embedding", "url"}; GET / (health).
- seed 001 (CLIP for pgvector): POST /embed-image (multipart `file`) -> {"embedding",
  "model": "CLIP-ViT-B/32", "device"}; GET /health.
- seed 002 (image analysis): POST /analyze_image/, POST /analyze_image_upload/ and
  GET /available_operations/ (gateway/analyze/).
- seed 003 (image search): GET /search/text, GET /image/{key}/similar, GET /stats and
  POST /search/image, aliases of the search APIs (same answers, same errors).
- seed 004 (CLIP encoder on BentoML): POST /encode_image and GET /health, the main APIs.

URLs go through the intake's safe fetch (public addresses only, size and time limits).
"""

from __future__ import annotations

from pathlib import Path

import bentoml
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from config.settings import Settings, load_settings
from intake.errors import ClientError
from models import get_spec

from .encode import EncodeRoutes
from .errors import api_errors
from .images import ImageLoader, ImageRef, upload_name
from .internvit import InternVitRoutes
from .runner_client import RunnerClient
from .schemas import EmbedImageResponse

EMBED_IMAGE_MODEL_NAME = "CLIP-ViT-B/32"  # what seed 001 called its model
FAST_EXTRACT_MODEL = "dinov2_giant"


def extract_mode_setting(settings: Settings | None = None) -> str:
    return (settings or load_settings()).test_extract


class ExtractResponse(BaseModel):
    """Seed 000's response."""

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


# Seed 003's read routes (GET), mounted beside the BentoML APIs by gateway/web.py.
search_aliases = APIRouter()


async def _answer(method, *args) -> Response:
    result = await api_errors(method)(*args)
    return result if isinstance(result, Response) else JSONResponse(result.model_dump())


@search_aliases.get("/search/text", summary="Seed 003: text search (alias of POST /search_text)")
async def search_text_get(q: str, top_k: int = 20, index: str = "default", svc=Depends(bentoml.get_current_service)):
    return await _answer(svc.routes.search.text, q, top_k, None, None, index)


@search_aliases.get("/image/{key:path}/similar", summary="Seed 003: items similar to one (alias of POST /similar)")
async def similar_get(key: str, top_k: int = 20, index: str = "default", svc=Depends(bentoml.get_current_service)):
    return await _answer(svc.routes.search.similar, key, top_k, None, None, index)


@search_aliases.get("/stats", summary="Seed 003: index statistics (alias of POST /index_stats)")
async def stats_get(index: str = "default", svc=Depends(bentoml.get_current_service)):
    return await _answer(svc.routes.admin.stats, index)
