"""Request and response models of the analyze API, in the shapes the image-analysis service documented."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.schemas import ItemError, null_first

Status = Literal["success", "error", "skipped"]


class AnalysisTask(BaseModel):
    """One task of an analyze request."""

    operation_id: str = Field(description="unique within the request; the key of this task's result")
    type: str = Field(description="the operation, e.g. embed_clip_vit_b_32 (GET /available_operations/ lists them)")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="target, face_context, collection_id (classify), max_length (describe_image)",
    )


class OperationResult(BaseModel):
    """The outcome of one task."""

    status: Status = Field(description="success, error or skipped")
    data: Any = Field(default=None, description="the result: a bbox, a vector, {is_in_collection, probability}, a text")
    cropped_image_bbox: list[int] | None = Field(
        default=None,
        description="[xmin, ymin, xmax, ymax] of the crop the task used; null if none",
        json_schema_extra=null_first,
    )
    cropped_image_base64: str | None = Field(default=None, description="that crop as a base64 PNG; null if none")
    error_message: str | None = Field(default=None, description="why the task failed or was skipped")


class AnalyzeResponse(BaseModel):
    image_url: str = Field(description='the image URL, "uploaded:<filename>" for uploads, "base64" for base64')
    results: dict[str, OperationResult] = Field(description="one result per task, keyed by operation_id, in order")


class AnalyzedImage(BaseModel):
    """One image of POST /analyze_images: its task results, or why it could not be read."""

    index: int = Field(description="position in the request: uploads first, then urls, then images_base64")
    source: str = Field(description='"upload:<filename>", "url:<url>" or "base64[<i>]"')
    image_url: str = Field(description="the URL, or the source label for uploads and base64")
    results: dict[str, OperationResult] | None = Field(
        default=None, description="one result per task, as /analyze; null when the image failed", json_schema_extra=null_first
    )
    error: ItemError | None = Field(default=None, description="why this image failed; null on success")


class AnalyzeImagesResponse(BaseModel):
    results: list[AnalyzedImage] = Field(description="one entry per image, in request order")


class OperationInfo(BaseModel):
    description: str
    allowed_targets: list[str]
    default_target: str
    params: dict[str, str] = Field(default_factory=dict, description="parameter name -> what it does")


class AvailableOperations(BaseModel):
    operations: dict[str, OperationInfo]


def success(data: Any, bbox: tuple[int, int, int, int] | None = None, png: str | None = None) -> OperationResult:
    return OperationResult(
        status="success", data=data, cropped_image_bbox=list(bbox) if bbox else None, cropped_image_base64=png
    )


def error(message: str) -> OperationResult:
    return OperationResult(status="error", error_message=message)


def skipped(message: str) -> OperationResult:
    return OperationResult(status="skipped", error_message=message)


class TaskSkipped(Exception):
    """The task cannot run on this image (no face found, no classifier): status "skipped"."""


class TaskFailed(Exception):
    """The task could not be done (a model not deployed or unusable): status "error"."""
