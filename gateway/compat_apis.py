"""The replaced services' BentoML APIs on their own paths (gateway/compat.py; docs/api.md's
compatibility table). A part of the gateway service (service.py's ImageEmbed inherits it;
BentoML finds inherited APIs), each a short delegation over the service's `routes`."""

from __future__ import annotations

from pathlib import Path

import bentoml
from pydantic import StrictInt

from models.families import embedding_keys

from .compat import FAST_EXTRACT_MODEL, ExtractResponse
from .errors import api_errors
from .images import ImageRef, upload_name
from .schemas import EmbedImageResponse
from .search import DEFAULT_INDEX
from .search_schemas import SearchResponse
from .served import requires, requires_one_of

IMAGE_MODELS = embedding_keys()


class CompatAPIs:
    """Needs `self.routes` (gateway/routes.py), set by the service's __init__."""

    @bentoml.api(route="/embed-image")
    @requires("clip")
    @api_errors
    async def embed_image(self, file: Path) -> EmbedImageResponse:
        """Embed one upload with CLIP: multipart `file` -> {"embedding", "model", "device"}."""
        return await self.routes.compat.embed_image(file)

    @bentoml.api(route="/embedding/fast_extract")
    @requires(FAST_EXTRACT_MODEL)
    @api_errors
    async def fast_extract(self, url: str) -> ExtractResponse:
        """Embed the image at `url` with DINOv2 ViT-g/14: {"url"} -> {"embedding", "url"}; the
        CLS token after the final layer norm, L2-normalized (1536 floats)."""
        return await self.routes.compat.fast_extract(url)

    @bentoml.api(route="/embedding/test_extract")
    @requires("internvit")
    @api_errors
    async def test_extract(self, url: str) -> ExtractResponse:
        """Embed the image at `url` with InternViT: {"url"} -> {"embedding", "url"}; the simple
        extractor (mean-pooled patch tokens, 1024 floats), or the three-level `combined` vector
        when IMAGE_EMBED_TEST_EXTRACT=combined."""
        return await self.routes.compat.test_extract(url)

    @bentoml.api(route="/search/image")
    @requires_one_of(IMAGE_MODELS)
    @api_errors
    async def search_image_file(self, file: Path, top_k: StrictInt = 20, index: str = DEFAULT_INDEX) -> SearchResponse:
        """Images similar to an upload: multipart `file` -> results best first (default top_k 20)."""
        ref = ImageRef(upload=file, label=f"upload:{upload_name(file)}")
        return await self.routes.search.image(ref, top_k, None, None, index)
