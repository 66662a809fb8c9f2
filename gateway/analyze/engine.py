"""Running one analyze request: all its tasks concurrently, shared work done once.

Each task awaits what it needs (a region, an embedding, a caption) through the request's
`Memo`, so independent model calls run at the same time and go to the runners' batchable
APIs (where they batch with other requests' calls), and work two tasks share (a detection,
the CLIP vector of a region that is both embedded and classified, a crop's PNG) is done
once. A task's failure is its own result; it never fails the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from intake.errors import ClientError

from ..errors import RunnerUnavailable
from .context import AnalysisContext, ValidTask
from .operations import OPERATIONS
from .schemas import OperationResult, TaskFailed, TaskSkipped, error, skipped, success

logger = logging.getLogger("image_embed.analyze")


async def run_task(ctx: AnalysisContext, task: ValidTask) -> OperationResult:
    try:
        return await OPERATIONS[task.type].handler(ctx, task)
    except TaskSkipped as exc:
        return skipped(str(exc))
    except TaskFailed as exc:
        return error(str(exc))
    except ClientError as exc:  # a runner refused the input
        return error(exc.detail)
    except RunnerUnavailable as exc:
        return error(f"the {exc.runner} model is unavailable: {exc.detail}")
    except Exception as exc:  # a bug: reported in the task, logged in full, never a 500
        logger.exception("task %r (%s) failed", task.operation_id, task.type)
        return error(f"internal error while running this task ({type(exc).__name__}); see the server log")


async def run_tasks(ctx: AnalysisContext, tasks: Sequence[ValidTask]) -> dict[str, OperationResult]:
    """Every task's result, keyed by operation_id in request order."""
    try:
        results = await asyncio.gather(*(run_task(ctx, t) for t in tasks))
    finally:
        ctx.memo.cancel()  # nothing is left running when the request ends (or is cancelled)
    return {t.operation_id: r for t, r in zip(tasks, results)}
