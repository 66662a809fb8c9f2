"""What each operation type does, given a validated task and the request's context."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from models.registry import find_by_store_tag

from .classifiers import ClassifierError
from .context import AnalysisContext, ValidTask
from .regions import PROMINENT_PERSON
from .schemas import OperationResult, TaskFailed, TaskSkipped, success

Handler = Callable[[AnalysisContext, ValidTask], Awaitable[OperationResult]]


async def detect_bounding_box(ctx: AnalysisContext, task: ValidTask) -> OperationResult:
    """data: [xmin, ymin, xmax, ymax] of the most prominent person or face; null if none."""
    if task.target == PROMINENT_PERSON:
        found = await ctx.regions.person()
    else:
        found = await ctx.regions.face(task.face_context)
    return success(list(found.box) if found else None)


def embed_with(model_key: str) -> Handler:
    async def embed(ctx: AnalysisContext, task: ValidTask) -> OperationResult:
        region = await ctx.regions.region(task.target, task.face_context)
        vector = await ctx.embedding(model_key, region)
        return await ctx.result([float(x) for x in vector], region)

    embed.__name__ = f"embed_{model_key}"
    return embed


async def embed_named_model(ctx: AnalysisContext, task: ValidTask) -> OperationResult:
    """data: the vector of the region by the model named in params.model (embed_clip)."""
    return await embed_with(str(task.params["model"]))(ctx, task)


async def classify(ctx: AnalysisContext, task: ValidTask) -> OperationResult:
    """data: {"is_in_collection": bool, "probability": float} from the collection's classifier."""
    collection_id = str(task.params["collection_id"])
    try:
        clf = ctx.classifiers.get(collection_id)
    except ClassifierError as exc:
        raise TaskFailed(str(exc)) from None
    if clf is None:
        known = ctx.classifiers.collection_ids()
        raise TaskSkipped(
            f"no classifier model for collection_id {collection_id} on this server "
            f"(known: {', '.join(known) if known else 'none'}; see image-embed train-classifiers)"
        )
    # the model the classifier was trained on (a CLIP model by name), else clip's, which refuses it
    spec = find_by_store_tag(clf.embedding_model) or ctx.backends.spec("clip")
    try:
        ctx.classifiers.check(clf, spec.store_tag, spec.output_dim or 0)
    except ClassifierError as exc:
        raise TaskFailed(str(exc)) from None
    region = await ctx.regions.region(task.target, task.face_context)
    vector = await ctx.embedding(spec.key, region)
    return await ctx.result(clf.predict(vector), region)


async def describe_image(ctx: AnalysisContext, task: ValidTask) -> OperationResult:
    """data: a caption of the region, at most max_length tokens."""
    region = await ctx.regions.region(task.target, task.face_context)
    text = await ctx.caption(region, int(task.params["max_length"]))
    return await ctx.result(text, region)
