"""The analyze APIs: POST /analyze, and seed 002's POST /analyze_image/ and /analyze_image_upload/.

(GET /available_operations/ is a plain route in gateway/web.py: BentoML APIs are POST only.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import bentoml
from pydantic import Field, TypeAdapter, ValidationError

from intake.errors import ClientError

from ..errors import api_errors
from ..images import ImageRef, single_ref, upload_name
from .backends import RunnerBackends
from .classifiers import ClassifierStore
from .engine import AnalysisContext, run_tasks
from .operations import validate_tasks
from .schemas import AnalysisTask, AnalyzeResponse
from .settings import AnalyzeSettings

_TASKS = TypeAdapter(list[AnalysisTask])


def parse_tasks_json(value: Any) -> list[AnalysisTask]:
    """Seed 002's `tasks_json` form field: a JSON array of tasks. (BentoML's multipart parser
    already JSON-decodes form fields it can; what it could not decode arrives as a string.)"""
    try:
        return _TASKS.validate_python(json.loads(value) if isinstance(value, (str, bytes)) else value)
    except json.JSONDecodeError as exc:
        raise ClientError(f"tasks_json is not valid JSON: {exc}", code="invalid_tasks_json") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'tasks'}: {e['msg']}" for e in exc.errors()[:5])
        raise ClientError(f"tasks_json must be a list of tasks: {problems}", code="invalid_tasks_json") from None


class AnalyzeAPI:
    """Mixin: needs `self.images` (ImageLoader) and the runner dependencies `clip`, `person`,
    `face`, `caption` (and `dino` for the DINO operations); call `init_analyze()` in __init__."""

    def init_analyze(self) -> None:
        self.analyze_settings = AnalyzeSettings.from_env()
        self.classifiers = ClassifierStore(self.analyze_settings.classifiers_dir)
        self.analyze_backends = RunnerBackends(self)

    async def run_analysis(self, ref: ImageRef, image_url: str, tasks: list[AnalysisTask]) -> AnalyzeResponse:
        valid = validate_tasks(tasks, self.analyze_settings.max_tasks)  # before any download
        decoded = await self.images.load(ref)  # fetched and decoded once, whatever the tasks
        ctx = AnalysisContext(decoded.image, self.analyze_backends, self.classifiers)
        return AnalyzeResponse(image_url=image_url, results=await run_tasks(ctx, valid))

    @bentoml.api(route="/analyze")
    @api_errors
    async def analyze(
        self,
        tasks: list[AnalysisTask],
        image: Path = None,  # type: ignore[assignment]
        url: str | None = None,
        image_base64: str | None = None,
    ) -> AnalyzeResponse:
        """Analyze one image with a list of tasks; one result per task, keyed by operation_id.

        Send exactly one of `image` (multipart upload), `url` or `image_base64`, and `tasks`:
        `[{"operation_id": "a", "type": "embed_clip_vit_b_32", "params": {"target": "prominent_face"}}]`
        (in multipart requests, `tasks` is one JSON array). Types: detect_bounding_box,
        embed_clip_vit_b_32, embed_dino_v2, embed_dino_v3, classify, describe_image
        (GET /available_operations/ describes them). Tasks that crop return the crop's bbox
        and a base64 PNG of it. A malformed task fails the request with a 400; a task that
        cannot run on this image (no face found, no classifier) is `skipped` or `error`
        while the others succeed."""
        ref = single_ref(image, url, image_base64)
        image_url = url or (f"uploaded:{upload_name(image)}" if image else "base64")
        return await self.run_analysis(ref, image_url, tasks)

    @bentoml.api(route="/analyze_image/")
    @api_errors
    async def analyze_image(self, image_url: str, tasks: list[AnalysisTask]) -> AnalyzeResponse:
        """Seed 002: analyze the image at `image_url` (http/https) with `tasks` (see /analyze)."""
        if not image_url.strip():
            raise ClientError("`image_url` is empty; send an http(s) URL", code="missing_image")
        return await self.run_analysis(ImageRef(url=image_url, label=f"url:{image_url}"), image_url, tasks)

    @bentoml.api(route="/analyze_image_upload/")
    @api_errors
    async def analyze_image_upload(
        self,
        image_file: Path,
        tasks_json: Annotated[Any, Field(description="a JSON array of tasks, as `tasks` of /analyze")],
    ) -> AnalyzeResponse:
        """Seed 002: multipart `image_file` (the image) and `tasks_json` (a JSON array of tasks);
        the response's image_url is "uploaded:<filename>"."""
        tasks = parse_tasks_json(tasks_json)
        name = upload_name(image_file)
        return await self.run_analysis(ImageRef(upload=image_file, label=f"upload:{name}"), f"uploaded:{name}", tasks)
