"""The operation registry: one entry per task type, the single source of truth for validating
tasks, dispatching them and `GET /available_operations/`.

The embedding operations come from the model registry: one per model spec that names an
`analyze_task` (embed_clip_vit_b_32, embed_dino_v2, embed_dino_v3), and `embed_clip`, which
embeds with the CLIP model named in `params.model` (any model of the registry that embeds
texts and images in one space: `clip` and IMAGE_EMBED_EXTRA_CLIP's).

A request whose tasks are malformed (unknown type, a target the type does not allow, a
missing or invalid parameter, a duplicate operation_id, too many tasks) is refused as a
whole with a 400 naming the task; nothing runs. What can only be known while running (no
face in this image, no classifier for this collection) becomes that task's own result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from intake.errors import ClientError
from models.caption import MAX_CAPTION_LENGTH
from models.families import embeds_texts
from models.registry import list_models
from models.specs import ModelSpec

from . import handlers
from .context import ValidTask
from .handlers import Handler
from .regions import PROMINENT_FACE, PROMINENT_PERSON, WHOLE_IMAGE
from .schemas import AnalysisTask, AvailableOperations, OperationInfo

ALL_TARGETS = (WHOLE_IMAGE, PROMINENT_PERSON, PROMINENT_FACE)
FACE_CONTEXTS = (PROMINENT_PERSON, WHOLE_IMAGE)
MAX_OPERATION_ID_CHARS = 200
MAX_COLLECTION_ID_CHARS = 100

TARGET_HELP = (
    "region to work on: whole_image, prominent_person (falls back to the whole image when no "
    "person is found) or prominent_face (requires a face; the task is skipped without one)"
)
FACE_CONTEXT_HELP = (
    "for prominent_face: search inside the prominent person (prominent_person, default) or the whole image"
)


class InvalidTask(ClientError):
    code = "invalid_task"


@dataclass(frozen=True, kw_only=True)
class Operation:
    type: str
    description: str
    handler: Handler
    allowed_targets: tuple[str, ...] = ALL_TARGETS
    default_target: str = WHOLE_IMAGE
    # extra parameters besides target and face_context: name -> help
    params: dict[str, str] = field(default_factory=dict)
    # the model keys it can run with (embeds, classifies or captions), one of which must be
    # served for it to be offered; empty: it needs no model of its own
    models: tuple[str, ...] = ()

    def info(self) -> OperationInfo:
        return OperationInfo(
            description=self.description,
            allowed_targets=list(self.allowed_targets),
            default_target=self.default_target,
            params={"target": TARGET_HELP, "face_context": FACE_CONTEXT_HELP, **self.params},
        )


DEFAULT_CLIP = "clip"


def _embed(spec: ModelSpec) -> Operation:
    return Operation(
        type=spec.analyze_task,
        description=spec.analyze_description,
        handler=handlers.embed_with(spec.key),
        models=(spec.key,),
    )


def clip_models() -> tuple[str, ...]:
    """The registry's CLIP models: texts and images in one space."""
    return tuple(spec.key for spec in list_models() if embeds_texts(spec))


def _embed_clip() -> Operation:
    return Operation(
        type="embed_clip",
        description="Generates an embedding using the CLIP model named in params.model (default clip, ViT-B/32).",
        handler=handlers.embed_named_model,
        models=clip_models(),
        params={"model": f"the CLIP model's key (default {DEFAULT_CLIP}; GET /v1/models lists the served ones)"},
    )


OPERATIONS: dict[str, Operation] = {
    op.type: op
    for op in (
        Operation(
            type="detect_bounding_box",
            description="Detects a bounding box for a specified target.",
            handler=handlers.detect_bounding_box,
            allowed_targets=(PROMINENT_PERSON, PROMINENT_FACE),
            default_target=PROMINENT_PERSON,
        ),
        *(_embed(spec) for spec in list_models() if spec.analyze_task),
        Operation(
            type="classify",
            description="Determines if an image region belongs to a specific collection using a binary classifier.",
            handler=handlers.classify,
            params={"collection_id": "required: the collection whose classifier to apply (integer or string)"},
            models=clip_models(),
        ),
        Operation(
            type="describe_image",
            description="Generates a text description of an image region using an image captioning model.",
            handler=handlers.describe_image,
            models=("caption",),
            params={"max_length": f"most tokens in the description (default 50, 2 to {MAX_CAPTION_LENGTH})"},
        ),
        _embed_clip(),
    )
}
DEFAULT_CAPTION_LENGTH = 50
MIN_CAPTION_LENGTH = 2  # BOS plus at least one word


# the detector a target needs (whole_image needs none)
TARGET_MODELS = {PROMINENT_PERSON: "person", PROMINENT_FACE: "face"}


def available_operations(served: Sequence[str] | None = None) -> AvailableOperations:
    """Every operation, or with `served` (model keys) those whose model is served, each
    with only the targets whose detectors are served."""
    if served is None:
        return AvailableOperations(operations={name: op.info() for name, op in OPERATIONS.items()})
    operations = {}
    for name, op in OPERATIONS.items():
        targets = served_targets(op, served)
        if (op.models and not set(op.models) & set(served)) or not targets:
            continue
        operations[name] = replace(op, allowed_targets=targets, default_target=default_target(op, served)).info()
    return AvailableOperations(operations=operations)


def served_targets(op: Operation, served: Sequence[str]) -> tuple[str, ...]:
    """The targets of `op` whose detectors are served."""
    return tuple(t for t in op.allowed_targets if TARGET_MODELS.get(t) in (None, *served))


def default_target(op: Operation, served: Sequence[str] | None) -> str:
    """The target a task gets when it names none: the operation's own default, or, when its
    detector is not served, the first target that is (what /available_operations/ shows)."""
    targets = op.allowed_targets if served is None else served_targets(op, served)
    return op.default_target if op.default_target in targets or not targets else targets[0]


def validate_tasks(
    tasks: Sequence[AnalysisTask], max_tasks: int, served: Sequence[str] | None = None
) -> list[ValidTask]:
    """Every task checked and completed with its defaults, or a 400 saying what is wrong."""
    if not tasks:
        raise ClientError("send at least one task in `tasks`", code="missing_tasks")
    if len(tasks) > max_tasks:
        raise ClientError(
            f"{len(tasks)} tasks in one request; the limit is {max_tasks} (IMAGE_EMBED_MAX_TASKS)",
            code="too_many_tasks",
        )
    seen: set[str] = set()
    valid = []
    for i, task in enumerate(tasks):
        oid = task.operation_id
        if not oid.strip() or len(oid) > MAX_OPERATION_ID_CHARS:
            raise InvalidTask(f"task {i}: operation_id must be 1 to {MAX_OPERATION_ID_CHARS} characters")
        if oid in seen:
            raise ClientError(f"task {i}: operation_id {oid!r} is used twice; they must be unique", code="duplicate_operation_id")
        seen.add(oid)
        valid.append(_validate(task, served))
    return valid


def _validate(task: AnalysisTask, served: Sequence[str] | None = None) -> ValidTask:
    where = f"task {task.operation_id!r}"
    op = OPERATIONS.get(task.type)
    if op is None:
        raise ClientError(
            f"{where}: unknown operation type {task.type!r}; available: {', '.join(OPERATIONS)}",
            code="unknown_operation",
        )
    params = dict(task.params)
    allowed = {"target", "face_context", *op.params}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidTask(f"{where}: {task.type} has no parameter {', '.join(map(repr, unknown))}; it takes {sorted(allowed)}")
    target = params.pop("target", None)
    target = default_target(op, served) if target is None else target
    if target not in op.allowed_targets:
        raise ClientError(
            f"{where}: target {target!r} is not allowed for {task.type}; allowed: {', '.join(op.allowed_targets)}",
            code="invalid_target",
        )
    face_context = params.pop("face_context", None)
    face_context = PROMINENT_PERSON if face_context is None else face_context
    if face_context not in FACE_CONTEXTS:
        raise InvalidTask(f"{where}: face_context must be one of {', '.join(FACE_CONTEXTS)}, not {face_context!r}")
    if task.type == "classify":
        params["collection_id"] = _collection_id(where, params.get("collection_id"))
    if task.type == "embed_clip":
        params["model"] = _clip_model(where, params.get("model"))
    if task.type == "describe_image":
        length = params.get("max_length")
        params["max_length"] = DEFAULT_CAPTION_LENGTH if length is None else _max_length(where, length)
    return ValidTask(task.operation_id, task.type, target, face_context, params)


def _collection_id(where: str, value: Any) -> str:
    if value is None:
        raise ClientError(f"{where}: classify needs params.collection_id", code="missing_param")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip():
        raise InvalidTask(f"{where}: collection_id must be an integer or a non-empty string, not {value!r}")
    text = str(value).strip()
    if len(text) > MAX_COLLECTION_ID_CHARS:
        raise InvalidTask(f"{where}: collection_id is longer than {MAX_COLLECTION_ID_CHARS} characters")
    return text


def _clip_model(where: str, value: Any) -> str:
    model = DEFAULT_CLIP if value is None else value
    if model not in clip_models():
        raise InvalidTask(f"{where}: model must be one of the CLIP models {', '.join(clip_models())}, not {value!r}")
    return model


def _max_length(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_CAPTION_LENGTH <= value <= MAX_CAPTION_LENGTH:
        raise InvalidTask(
            f"{where}: max_length must be an integer from {MIN_CAPTION_LENGTH} to {MAX_CAPTION_LENGTH}, not {value!r}"
        )
    return value
