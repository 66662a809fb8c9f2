"""The OpenAI-compatible embeddings API: POST /v1/embeddings and GET /v1/models.

    POST /v1/embeddings {"model": "clip", "input": ["a cat", "data:image/png;base64,..."],
                         "encoding_format": "float" | "base64", "modality": "text" | "image"}

`input` is a string or a list of strings (token arrays are refused). Each item is a text or an
image, in this order of rules:

- `modality: "image"` (as infinity spells it): every item is an image, a
  `data:image/...;base64,...` URI or an http(s) URL (fetched through the same safe intake as
  every URL: IMAGE_EMBED_URL_POLICY and its allow-list);
- `modality: "text"`: every item is a text, whatever it looks like;
- no modality: a `data:image/...` URI is an image, anything else a text. A text that looks
  like a URL stays a text (CLIP embeds its characters): send `modality: "image"` to have URLs
  fetched.

Images are embedded in one runner call (as /encode_images), texts in another (as
/encode_texts), and the vectors come back in input order. Every served embedding model is a
`model`: the CLIP models take texts and images, DINOv2, DINOv3, dinov2_giant and InternViT
images only (a text to them is a 400 saying so). `base64` is the little-endian float32 bytes
of the vector, as OpenAI's clients decode it. `usage` counts no tokens (0): the gateway does
not tokenize. Errors have OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`,
so OpenAI's clients raise their usual exceptions (400 BadRequestError, 404 NotFoundError).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.responses import JSONResponse

from config.sections import GatewaySettings
from intake.errors import ClientError

from .bound import bound
from .encode import EncodeRoutes
from .errors import RETRY_AFTER_S, RunnerUnavailable
from .images import ImageRef
from .runner_client import RunnerClient

IMAGE_URI = "data:image/"


class OpenAIError(ClientError):
    """A refusal of the OpenAI route, with the request field it concerns (`param`)."""

    def __init__(
        self, detail: str, *, param: str | None = None, status: int = 400, code: str = "invalid_request"
    ) -> None:
        super().__init__(detail, status=status, code=code)
        self.param = param


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # `user` and other OpenAI fields are accepted and unused

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    modality: Literal["text", "image"] | None = None
    dimensions: int | None = None


def error_response(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    headers = {"Retry-After": RETRY_AFTER_S} if status in (429, 503, 504) else None
    return JSONResponse(body, status_code=status, headers=headers)


def is_image(item: str, modality: str | None) -> bool:
    if modality is not None:
        return modality == "image"
    return item.startswith(IMAGE_URI)


def image_ref(i: int, item: str) -> ImageRef:
    text = item.strip()
    if text.startswith(IMAGE_URI):
        return ImageRef(base64=text, label=f"input[{i}]")
    if text.lower().startswith(("http://", "https://")):
        return ImageRef(url=text, label=f"input[{i}]")
    raise OpenAIError(
        f"input[{i}] is not an image: with modality image, send a data:image/...;base64, URI or an http(s) URL",
        param="input",
        code="invalid_image",
    )


def encoded(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector.tolist()


class OpenAIRoutes:
    def __init__(self, runners: RunnerClient, encode: EncodeRoutes, limits: GatewaySettings) -> None:
        self.runners = runners
        self.encode = encode
        self.limits = limits

    def models(self) -> dict[str, Any]:
        """GET /v1/models: the served embedding models, OpenAI's list shape, with what each takes."""
        from models.families import embeds_texts

        data = []
        for key in self.runners.embedding_models():
            spec = self.encode.spec(key)
            modalities = ["text", "image"] if embeds_texts(spec) else ["image"]
            data.append({
                "id": key, "object": "model", "created": 0, "owned_by": "image-embed",
                "display_name": spec.display_name, "dimensions": spec.output_dim, "modalities": modalities,
            })
        return {"object": "list", "data": data}

    async def embeddings(self, request: EmbeddingsRequest) -> dict[str, Any]:
        items = [request.input] if isinstance(request.input, str) else list(request.input)
        if not items:
            raise OpenAIError("`input` is empty: send a string or a list of strings", param="input")
        if not all(isinstance(item, str) for item in items):
            raise OpenAIError("token arrays are not supported: send strings (texts or images)", param="input")
        spec = self.encode.spec(request.model)
        if request.dimensions is not None and request.dimensions != spec.output_dim:
            raise OpenAIError(
                f"the {request.model} model answers {spec.output_dim} dimensions; `dimensions` cannot change that",
                param="dimensions",
            )
        images = [i for i, item in enumerate(items) if is_image(item, request.modality)]
        texts = sorted(set(range(len(items))) - set(images))
        if len(images) > self.limits.max_items:
            raise OpenAIError(
                f"{len(images)} images in one call; the limit is {self.limits.max_items} (IMAGE_EMBED_MAX_ITEMS)",
                param="input", code="too_many_items",
            )
        refs = [image_ref(i, items[i]) for i in images]
        text_vectors, image_vectors = await asyncio.gather(
            self._texts(request.model, [items[i] for i in texts]), self._images(refs, spec)
        )
        vectors = dict(zip(texts, text_vectors)) | dict(zip(images, image_vectors))
        data = [
            {"object": "embedding", "index": i, "embedding": encoded(vectors[i], request.encoding_format)}
            for i in range(len(items))
        ]
        return {"object": "list", "data": data, "model": request.model, "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    async def _texts(self, model: str, texts: list[str]) -> list[np.ndarray]:
        return list(await self.encode.text_vectors(texts, model)) if texts else []

    async def _images(self, refs: list[ImageRef], spec) -> list[np.ndarray]:
        if not refs:
            return []
        vectors = await self.encode.embed_refs(refs, spec)
        for ref, vector in zip(refs, vectors):
            if isinstance(vector, ClientError):
                raise OpenAIError(f"{ref.label}: {vector.detail}", param="input", status=vector.status, code=vector.code)
        return vectors


openai_routes = APIRouter(prefix="/v1")
REQUEST_SCHEMA = EmbeddingsRequest.model_json_schema()  # declared in /docs.json (the body is parsed here)


def _invalid_body(exc: Exception) -> OpenAIError:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors[:5])
        return OpenAIError(f"invalid request: {problems}", param=str(errors[0]["loc"][0]) if errors[0]["loc"] else None)
    return OpenAIError(f"the body is not a JSON object: {exc}")


async def _answer(work) -> JSONResponse:
    try:
        return JSONResponse(await work())
    except OpenAIError as exc:
        return error_response(exc.status, exc.detail, exc.code, exc.param)
    except ClientError as exc:
        param = "model" if exc.code == "model_not_served" else "input"
        return error_response(exc.status, exc.detail, exc.code, param)
    except RunnerUnavailable as exc:
        return error_response(exc.status, f"the {exc.runner} model is unavailable: {exc.detail}", exc.code)


@openai_routes.post(
    "/embeddings",
    summary="OpenAI-compatible embeddings of texts and images",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": REQUEST_SCHEMA}}}},
)
async def create_embeddings(request: Request, routes: OpenAIRoutes = bound(OpenAIRoutes)) -> JSONResponse:
    async def work() -> dict[str, Any]:
        try:
            body = EmbeddingsRequest.model_validate(json.loads(await request.body()))
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            raise _invalid_body(exc) from None
        return await routes.embeddings(body)

    return await _answer(work)


@openai_routes.get("/models", summary="OpenAI-compatible list of the served embedding models")
async def list_served_models(routes: OpenAIRoutes = bound(OpenAIRoutes)) -> JSONResponse:
    async def work() -> dict[str, Any]:
        return routes.models()

    return await _answer(work)
