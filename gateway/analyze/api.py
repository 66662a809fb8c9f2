"""Analyze requests: POST /analyze, /analyze_images, and /analyze_image/ and
/analyze_image_upload/ (declared in service.py; GET /available_operations/ is a plain route
in gateway/web.py, as BentoML APIs are POST only)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from config.sections import AnalyzeSettings
from intake.errors import ClientError

from ..images import ImageLoader, ImageRef, upload_name
from ..runner_client import RunnerClient
from ..schemas import ItemError
from .backends import RunnerBackends
from .classifiers import ClassifierStore
from .context import AnalysisContext, ValidTask
from .engine import run_tasks
from .operations import available_operations, validate_tasks
from .schemas import AnalysisTask, AnalyzedImage, AnalyzeImagesResponse, AnalyzeResponse, AvailableOperations

_TASKS = TypeAdapter(list[AnalysisTask])


def parse_tasks_json(value: Any) -> list[AnalysisTask]:
    """The `tasks_json` form field of /analyze_image_upload/: a JSON array of tasks. (BentoML's multipart parser
    already JSON-decodes form fields it can; what it could not decode arrives as a string.)"""
    try:
        return _TASKS.validate_python(json.loads(value) if isinstance(value, (str, bytes)) else value)
    except json.JSONDecodeError as exc:
        raise ClientError(f"tasks_json is not valid JSON: {exc}", code="invalid_tasks_json") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'tasks'}: {e['msg']}" for e in exc.errors()[:5])
        raise ClientError(f"tasks_json must be a list of tasks: {problems}", code="invalid_tasks_json") from None


class AnalyzeRoutes:
    """Runs analyze requests: validates the tasks, loads the image once, runs the tasks."""

    def __init__(self, runners: RunnerClient, images: ImageLoader, settings: AnalyzeSettings) -> None:
        self.images = images
        self.settings = settings
        self.classifiers = ClassifierStore(settings.classifiers_dir)
        self.backends = RunnerBackends(runners)
        self.runners = runners

    async def run(self, ref: ImageRef, image_url: str, tasks: list[AnalysisTask]) -> AnalyzeResponse:
        valid = validate_tasks(tasks, self.settings.max_tasks, self.runners.served)  # before any download
        decoded = await self.images.load(ref)  # fetched and decoded once, whatever the tasks
        return await self._run_valid(decoded.image, image_url, valid)

    async def _run_valid(self, image, image_url: str, valid: list[ValidTask]) -> AnalyzeResponse:
        ctx = AnalysisContext(image, self.backends, self.classifiers)
        return AnalyzeResponse(image_url=image_url, results=await run_tasks(ctx, valid))

    async def run_many(self, refs: list[ImageRef], tasks: list[AnalysisTask]) -> AnalyzeImagesResponse:
        """The same tasks on every image, concurrently; an image that cannot be read gets its
        error, the others their results."""
        valid = validate_tasks(tasks, self.settings.max_tasks, self.runners.served)

        async def one(i: int, ref: ImageRef) -> AnalyzedImage:
            image_url = ref.url or ref.label
            try:
                decoded = await self.images.load(ref)
            except ClientError as exc:
                return AnalyzedImage(index=i, source=ref.label, image_url=image_url, error=ItemError(**exc.to_json()))
            answer = await self._run_valid(decoded.image, image_url, valid)
            return AnalyzedImage(index=i, source=ref.label, image_url=image_url, results=answer.results)

        return AnalyzeImagesResponse(results=list(await asyncio.gather(*(one(i, r) for i, r in enumerate(refs)))))

    def operations(self) -> AvailableOperations:
        return available_operations(self.runners.served)


def image_url_of(url: str | None, upload: Path | None) -> str:
    return url or (f"uploaded:{upload_name(upload)}" if upload else "base64")
