"""The gateway: one BentoML service composing the chosen model runners into the public APIs.

    bentoml serve .                          every model (bentofile.yaml names this service)
    bentoml serve . --arg models=clip,face   only these (or IMAGE_EMBED_MODELS=clip,face)
    bentoml serve service:svc --port 3000    the same service by its short name `svc`
    bentoml build --arg models=clip --arg engine=onnx   a Bento whose image has no PyTorch

Every API below is a short delegation to a route module of gateway/ (encode, analyze, search,
index admin), which call the runners through one typed client (gateway/runner_client.py); the
library's APIs (gateway/library_apis.py) and the replaced services' (gateway/compat_apis.py) are
declared the same way in classes the service inherits.
An API whose model is not served is left out of the schema and answers 404 model_not_served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import bentoml
from pydantic import Field, StrictBool, StrictFloat, StrictInt

from config.image import bento_image
from config.sections import GatewaySettings
from gateway.access_log import AccessLogMiddleware, access_log_enabled
from gateway.admission import AdmissionMiddleware
from gateway.analyze.api import image_url_of, parse_tasks_json
from gateway.analyze.schemas import AnalysisTask, AnalyzeImagesResponse, AnalyzeResponse
from gateway.auth import APIKeyMiddleware, load_api_keys
from gateway.body_limit import BodyLimitMiddleware
from gateway.bound import bind
from gateway.encode import DEFAULT_MODEL, Model, Text
from gateway.errors import api_errors
from gateway.images import ImageRef, many_refs, single_ref, upload_name
from gateway.internvit import InternVitLevels
from gateway.compat_apis import CompatAPIs
from gateway.library import label_filter
from gateway.library_apis import LibraryAPIs
from gateway.openapi import api_routes, complete_spec
from gateway.rank import RankResponse
from gateway.routes import Routes
from gateway.runner_client import RunnerClient
from gateway.served import answer_not_served, prune_unserved_apis, requires, requires_one_of
from gateway.schemas import EncodeImagesResponse
from gateway.search import DEFAULT_INDEX
from gateway.search_schemas import (
    DeleteResponse,
    DropIndexResponse,
    DuplicatesResponse,
    GetResponse,
    IndexImagesResponse,
    IndexStats,
    SearchResponse,
    VerifyResponse,
)
from gateway.shutdown import GracefulShutdown
from gateway.startup import start_up
from gateway.unroutable import UnroutablePathMiddleware
from gateway.web import ServiceDescription, web_app
from intake.errors import ClientError
from models.families import embedding_keys
from models.selection import ServeArguments
from runners.services import check_runner_names, gateway_base
from runners.shutdown import GATEWAY_SERVICE

START = start_up(bentoml.use_arguments(ServeArguments))  # stops `bentoml serve` with the fix when a check fails
SETTINGS, SERVED, RUNNERS, IndexRunner = START.settings, START.served, START.runners, START.index_runner
LIMITS: GatewaySettings = SETTINGS  # the request-shape limits: a section of the settings
# The APIs that take `model`: any image embedding model, or any CLIP (texts and images).
IMAGE_MODELS, CLIP_MODELS = embedding_keys(), embedding_keys(texts=True)
# The gateway's timeout is longer than every runner's, so a slow model is reported by the
# gateway as a clear error instead of the gateway itself timing out.
GATEWAY_TIMEOUT_S = 60


IMAGE = bento_image(lean=START.engine == "onnx")  # the Bento's container image (config/image.py)
NoUpload: Path = None  # type: ignore[assignment]  (optional uploads: BentoML needs a default)


@bentoml.asgi_app(web_app, path="/")
@bentoml.service(
    name=GATEWAY_SERVICE,
    image=IMAGE,
    traffic={"timeout": GATEWAY_TIMEOUT_S},
    # BentoML's own runner probe turns a dead runner into a 500 on /readyz: off, the gateway's
    # __is_ready__ answers 503 naming the runners down. Its access lines would repeat ours.
    runner_probe={"enabled": False},
    logging={"access": {"enabled": False}},
)
class ImageEmbed(gateway_base(RUNNERS, GracefulShutdown), LibraryAPIs, CompatAPIs):  # a runner attribute per model; more APIs
    index = bentoml.depends(IndexRunner)  # always: search by vector or key needs no model

    def __init__(self) -> None:
        self.pin_runner_sockets()  # first: before any runner attribute is used
        runners = RunnerClient({name: getattr(self, name) for name in ImageEmbed.dependencies}, SERVED)
        self.routes = Routes(runners, SETTINGS)
        # The plain HTTP routes (gateway/web.py) get the same route objects as the APIs below.
        description = ServiceDescription(list(ImageEmbed.apis), list(SERVED), self.openapi_document)
        bind(web_app, *self.routes.objects(), description)

    def openapi_document(self) -> dict:
        return complete_spec(ImageEmbed.openapi_spec.asdict(), api_routes(ImageEmbed))

    async def __is_ready__(self) -> bool:
        return await self.routes.health.check_ready()

    @bentoml.on_shutdown
    async def close_fetcher(self) -> None:
        await self.routes.images.aclose()

    # -- Encoding (`model`: default clip, CLIP ViT-B/32; GET /v1/models lists the served ones) --

    @bentoml.api(route="/encode_image")
    @requires_one_of(IMAGE_MODELS)
    @api_errors
    async def encode_image(
        self,
        image: Path = NoUpload,
        url: str | None = None,
        image_base64: str | None = None,
        model: Model = DEFAULT_MODEL,
    ) -> list[float]:
        """Embed one image: the bare JSON list of floats, L2-normalized (512 with CLIP ViT-B/32,
        the default `model`). Send exactly one of `image` (multipart upload), `url` (http/https)
        or `image_base64` (base64 or a data: URL)."""
        return await self.routes.encode.image_vector(single_ref(image, url, image_base64), model)

    @bentoml.api
    @requires_one_of(IMAGE_MODELS)
    @api_errors
    async def encode_images(
        self, images: list[Path] = [], urls: list[str] = [], images_base64: list[str] = [], model: Model = DEFAULT_MODEL
    ) -> EncodeImagesResponse:
        """Embed many images in one call: one result per image, in order (uploads, then `urls`,
        then `images_base64`). An image that fails gets an `error` and no embedding; the others
        still succeed. In multipart requests `urls` and `images_base64` are JSON arrays."""
        return await self.routes.encode.images_response(many_refs(images, urls, images_base64, LIMITS.max_items), model)

    @bentoml.api
    @requires_one_of(CLIP_MODELS)
    @api_errors
    async def encode_text(self, text: Text, model: Model = DEFAULT_MODEL) -> list[float]:
        """Embed one text with a CLIP text tower, in the same space as its images. Texts longer
        than CLIP's 77 tokens are truncated."""
        return (await self.routes.encode.text_vectors([text], model))[0].tolist()

    @bentoml.api
    @requires_one_of(CLIP_MODELS)
    @api_errors
    async def encode_texts(
        self, texts: Annotated[list[Text], Field(min_length=1)], model: Model = DEFAULT_MODEL
    ) -> list[list[float]]:
        """Embed many texts: one vector per text, in order."""
        return (await self.routes.encode.text_vectors(texts, model)).tolist()

    @bentoml.api(route="/rank")
    @requires_one_of(CLIP_MODELS)
    @api_errors
    async def rank(
        self,
        texts: Annotated[list[Text], Field(min_length=1)],
        image: Path = NoUpload,
        url: str | None = None,
        image_base64: str | None = None,
        model: Model = DEFAULT_MODEL,
    ) -> RankResponse:
        """Zero-shot ranking: how well each text describes one image (send exactly one of
        `image`, `url`, `image_base64`), best first: each text's cosine `score` and its
        `probability`, the softmax of the scores times the model's own logit scale."""
        return await self.routes.rank.rank(single_ref(image, url, image_base64), texts, model)

    # -- InternViT -------------------------------------------------------------------------

    @bentoml.api(route="/encode_internvit")
    @requires("internvit")
    @api_errors
    async def encode_internvit(self, image: Path = NoUpload, url: str | None = None, image_base64: str | None = None) -> list[float]:
        """Embed one image with InternViT-300M-448px (simple extractor): the bare JSON list of
        1024 floats, L2-normalized: the mean of the patch tokens (CLS token excluded) after
        timm's eval transform (short side to 448, center crop 448). Send exactly one of
        `image`, `url` or `image_base64`."""
        return await self.routes.internvit.simple(single_ref(image, url, image_base64))

    @bentoml.api(route="/encode_internvit_levels")
    @requires("internvit")
    @api_errors
    async def encode_internvit_levels(
        self, image: Path = NoUpload, url: str | None = None, image_base64: str | None = None
    ) -> InternVitLevels:
        """Three-level InternViT embedding of one image: `global` (the whole image resized to
        448 x 448), `focused` (the central box covering half the area, by default), `tiles` (a
        2 x 2 grid with 20% overlap, by default, row-major) and `combined` (L2norm(0.5 global +
        0.25 focused + 0.25 L2norm(mean(tiles))), by default), each L2-normalized, 1024 floats;
        `boxes` says where each view was cut. Send exactly one of `image`, `url` or `image_base64`."""
        return await self.routes.internvit.three_levels(single_ref(image, url, image_base64))

    # -- Analysis ----------------------------------------------------------------------------

    @bentoml.api(route="/analyze")
    @api_errors
    async def analyze(
        self, tasks: list[AnalysisTask], image: Path = NoUpload, url: str | None = None, image_base64: str | None = None
    ) -> AnalyzeResponse:
        """Analyze one image with a list of tasks; one result per task, keyed by operation_id.

        Send exactly one of `image` (multipart upload), `url` or `image_base64`, and `tasks`:
        `[{"operation_id": "a", "type": "embed_clip_vit_b_32", "params": {"target": "prominent_face"}}]`
        (in multipart requests, `tasks` is one JSON array). Types: detect_bounding_box,
        embed_clip_vit_b_32, embed_dino_v2, embed_dino_v3, classify, describe_image (GET
        /available_operations/ lists those this server serves). Tasks that crop return the
        crop's bbox and a base64 PNG of it. A malformed task fails the request with a 400; a
        task that cannot run on this image (no face found, no classifier, a model this server
        does not serve) is `skipped` or `error` while the others succeed."""
        ref = single_ref(image, url, image_base64)
        return await self.routes.analyze.run(ref, image_url_of(url, image), tasks)

    @bentoml.api(route="/analyze_images")
    @api_errors
    async def analyze_images(
        self,
        tasks: list[AnalysisTask],
        images: list[Path] = [],
        urls: list[str] = [],
        images_base64: list[str] = [],
    ) -> AnalyzeImagesResponse:
        """Analyze many images (uploads, then `urls`, then `images_base64`; up to
        IMAGE_EMBED_MAX_ITEMS) with one task list: one entry per image, in order, each with the
        task results of /analyze, or the `error` that kept that image out (the others go on)."""
        return await self.routes.analyze.run_many(many_refs(images, urls, images_base64, LIMITS.max_items), tasks)

    @bentoml.api(route="/analyze_image/")
    @api_errors
    async def analyze_image(self, image_url: str, tasks: list[AnalysisTask]) -> AnalyzeResponse:
        """Analyze the image at `image_url` (http/https) with `tasks` (see /analyze)."""
        if not image_url.strip():
            raise ClientError("`image_url` is empty; send an http(s) URL", code="missing_image")
        return await self.routes.analyze.run(ImageRef(url=image_url, label=f"url:{image_url}"), image_url, tasks)

    @bentoml.api(route="/analyze_image_upload/")
    @api_errors
    async def analyze_image_upload(
        self, image_file: Path, tasks_json: Annotated[Any, Field(description="a JSON array of tasks, as `tasks` of /analyze")]
    ) -> AnalyzeResponse:
        """Analyze an upload: multipart `image_file` (the image) and `tasks_json` (a JSON array
        of tasks); the response's image_url is "uploaded:<filename>"."""
        name = upload_name(image_file)
        ref = ImageRef(upload=image_file, label=f"upload:{name}")
        return await self.routes.analyze.run(ref, f"uploaded:{name}", parse_tasks_json(tasks_json))

    # -- Search --------------------------------------------------------------------------------

    @bentoml.api
    @requires_one_of(IMAGE_MODELS)
    @api_errors
    async def index_images(
        self,
        images: list[Path] = [],
        urls: list[str] = [],
        images_base64: list[str] = [],
        keys: list[str] = [],
        metadata: list[dict[str, Any] | None] = [],
        index: str = DEFAULT_INDEX,
        model: str | None = None,
    ) -> IndexImagesResponse:
        """Embed images and add them to an index (created on first use, bound to `model`:
        default clip), by key. An existing index takes only its own model's vectors.

        Images: uploads in `images`, then `urls`, then `images_base64` (up to 64 in all).
        `keys`: one per image (default: the URL, or the upload's file name); an existing key is
        replaced. `metadata`: optional, one JSON object per image. An image that fails gets an
        `error` in its result and the others are still indexed; all of them are durable when
        the call returns."""
        refs = many_refs(images, urls, images_base64, LIMITS.max_items)
        return await self.routes.search.index_images(refs, keys, metadata, index, model)

    @bentoml.api
    @requires_one_of(CLIP_MODELS)
    @api_errors
    async def search_text(
        self,
        query: Text,
        top_k: StrictInt = 10,
        min_score: StrictFloat | None = None,
        filter: dict[str, Any] | None = None,
        index: str = DEFAULT_INDEX,
        offset: StrictInt = 0,
        min_rating: StrictInt = 0,
        tag_ids: list[StrictInt] = [],
        include_hidden: StrictBool = False,
    ) -> SearchResponse:
        """Images that match a text (the index's CLIP model), best first: `[{key, score, metadata}]`.
        `top_k`: up to 10000; `offset`: skip that many best hits first (paging).
        `min_score`: drop results below this cosine similarity. `filter`: metadata fields that
        must be equal, e.g. {"album": "2023"}. `min_rating`, `tag_ids` (items carrying all of
        them) and `include_hidden` (hidden items are left out unless true) apply before
        `top_k` and `offset`, as on every search API."""
        labels = label_filter(min_rating, tag_ids, include_hidden)
        return await self.routes.search.text(query, top_k, min_score, filter, index, offset, labels=labels)

    @bentoml.api
    @requires_one_of(IMAGE_MODELS)
    @api_errors
    async def search_image(
        self,
        image: Path = NoUpload,
        url: str | None = None,
        image_base64: str | None = None,
        top_k: StrictInt = 10,
        min_score: StrictFloat | None = None,
        filter: dict[str, Any] | None = None,
        index: str = DEFAULT_INDEX,
        offset: StrictInt = 0,
        min_rating: StrictInt = 0,
        tag_ids: list[StrictInt] = [],
        include_hidden: StrictBool = False,
    ) -> SearchResponse:
        """Images similar to one image: send exactly one of `image` (upload), `url` or `image_base64`."""
        labels = label_filter(min_rating, tag_ids, include_hidden)
        ref = single_ref(image, url, image_base64)
        return await self.routes.search.image(ref, top_k, min_score, filter, index, offset, labels=labels)

    @bentoml.api
    @api_errors
    async def search_vector(
        self,
        vector: list[StrictFloat],
        top_k: StrictInt = 10,
        min_score: StrictFloat | None = None,
        filter: dict[str, Any] | None = None,
        index: str = DEFAULT_INDEX,
        offset: StrictInt = 0,
        min_rating: StrictInt = 0,
        tag_ids: list[StrictInt] = [],
        include_hidden: StrictBool = False,
    ) -> SearchResponse:
        """Search with a vector of your own, in the index's model's space (512 floats for clip;
        it is normalized)."""
        labels = label_filter(min_rating, tag_ids, include_hidden)
        return await self.routes.search.vector(vector, top_k, min_score, filter, index, offset, labels=labels)

    @bentoml.api
    @api_errors
    async def similar(
        self,
        key: str | None = None,
        top_k: StrictInt = 10,
        min_score: StrictFloat | None = None,
        filter: dict[str, Any] | None = None,
        index: str = DEFAULT_INDEX,
        keys: list[str] = [],
        negative_keys: list[str] = [],
        offset: StrictInt = 0,
        min_rating: StrictInt = 0,
        tag_ids: list[StrictInt] = [],
        include_hidden: StrictBool = False,
    ) -> SearchResponse:
        """Items similar to the item stored under `key`, or to several (`keys`: the normalized
        mean of their vectors, minus the mean of `negative_keys` when given); the examples
        themselves are excluded. `top_k` up to 10000, `offset` for paging."""
        labels = label_filter(min_rating, tag_ids, include_hidden)
        return await self.routes.search.similar(
            key, top_k, min_score, filter, index, keys=keys, negative_keys=negative_keys, offset=offset, labels=labels
        )

    # -- Index admin -------------------------------------------------------------------------

    @bentoml.api
    @api_errors
    async def delete(self, keys: list[str], index: str = DEFAULT_INDEX) -> DeleteResponse:
        """Delete items by key (durable when it returns); unknown keys are listed in `missing`."""
        return await self.routes.admin.delete(keys, index)

    @bentoml.api
    @api_errors
    async def drop_index(self, index: str) -> DropIndexResponse:
        """Remove an index and all its data (404 if there is none). On PostgreSQL, for every
        server that shares the database."""
        return await self.routes.admin.drop(index)

    @bentoml.api
    @api_errors
    async def get(self, keys: list[str], index: str = DEFAULT_INDEX, with_vectors: StrictBool = False) -> GetResponse:
        """Items by key: metadata, source (the URL it was indexed from) and optionally the stored
        vector; unknown keys are listed in `missing`. A cheap "is it indexed?" check."""
        return await self.routes.admin.get(keys, index, with_vectors)

    @bentoml.api
    @api_errors
    async def index_stats(self, index: str = DEFAULT_INDEX) -> IndexStats:
        """Count, dimension, model, index type (exact or approximate), bytes on disk and the
        back end (`details.backend`: sqlite or postgresql) of an index."""
        return await self.routes.admin.stats(index)

    @bentoml.api
    @api_errors
    async def find_duplicates(
        self,
        threshold: StrictFloat = 0.95,
        limit: StrictInt = 100,
        index: str = DEFAULT_INDEX,
        method: str = "clip",
        max_distance: StrictInt = 5,
        include_hidden: StrictBool = False,
    ) -> DuplicatesResponse:
        """Near-identical items, as `pairs` and as `groups` (hidden items left out unless
        `include_hidden`). `method` "clip": pairs whose CLIP cosine is at least `threshold`,
        most similar first (up to `limit`; every item is compared with its 10 nearest
        neighbours). "phash": groups of items whose 64-bit perceptual hashes are within
        `max_distance` bits (Hamming; default 5), found by multi-index hashing (up to `limit`
        groups, largest first)."""
        return await self.routes.admin.duplicates(threshold, limit, index, method, max_distance, include_hidden)

    @bentoml.api
    @requires_one_of(IMAGE_MODELS)
    @api_errors
    async def verify_index(
        self, sample: StrictInt = 16, images: list[Path] = [], keys: list[str] = [], index: str = DEFAULT_INDEX
    ) -> VerifyResponse:
        """Check that keys and vectors are aligned.

        Structure: every key maps to exactly one stored vector (and ids, tombstones and norms
        are sound). Content: up to `sample` random items that were indexed from a URL are
        fetched again (through the same safe intake) and re-embedded; and images you send in
        `images`, with their `keys`, are embedded and compared with what is stored under those
        keys. An item passes at cosine >= 0.999. The server never reads local paths: to verify
        items indexed from files, send the files (image-embed verify-index --folder does)."""
        refs = many_refs(images, [], [], LIMITS.max_items) if images else []
        return await self.routes.admin.verify(sample, refs, keys, index)


# APIs whose model is not served leave the schema; their routes answer 404 model_not_served.
answer_not_served(web_app, prune_unserved_apis(ImageEmbed, SERVED), SERVED)
check_runner_names(ImageEmbed, RUNNERS)
svc = ImageEmbed  # `bentoml serve service:svc`, the command the replaced services documented

# Added first = outermost of ours: the access log sees every answer (429, 401, 413 included),
# a request beyond IMAGE_EMBED_MAX_IN_FLIGHT is refused before anything else is done for it,
# the key is checked before any body is read, and oversized bodies are cut off before parsing.
if access_log_enabled(SETTINGS):
    ImageEmbed.add_asgi_middleware(AccessLogMiddleware)
ImageEmbed.add_asgi_middleware(AdmissionMiddleware, max_in_flight=LIMITS.max_in_flight)
if API_KEYS := load_api_keys(SETTINGS):
    ImageEmbed.add_asgi_middleware(APIKeyMiddleware, keys=API_KEYS)
ImageEmbed.add_asgi_middleware(BodyLimitMiddleware, max_bytes=LIMITS.max_body_bytes)
ImageEmbed.add_asgi_middleware(UnroutablePathMiddleware)  # a JSON 404 where no route matched, not plain text
