"""What /health and / report, assembled from the registry and the runners' own info."""

from __future__ import annotations

import asyncio
from typing import Any

from models import current_profile, list_models

RUNNER_INFO_TIMEOUT_S = 5.0


class HealthMixin:
    """Mixin: needs `runner_names()`, the attribute names of the runner dependencies."""

    _runner_info: dict[str, dict[str, Any]]

    async def runner_info(self, key: str) -> dict[str, Any]:
        """The runner's self-description; cached once it answered (it does not change)."""
        cache = self.__dict__.setdefault("_runner_info", {})
        if key not in cache:
            runner = getattr(self, key)
            cache[key] = await asyncio.wait_for(runner.to_async.info(), RUNNER_INFO_TIMEOUT_S)
        return cache[key]

    async def health_report(self) -> tuple[int, dict[str, Any]]:
        """(status code, body) for GET /health: 200 when every runner answers, else 503."""
        names = self.runner_names()
        # Ask the runners each time (concurrently): a cached answer would hide a dead runner.
        answers = await asyncio.gather(
            *(asyncio.wait_for(getattr(self, n).to_async.info(), RUNNER_INFO_TIMEOUT_S) for n in names),
            return_exceptions=True,
        )
        models: dict[str, Any] = {}
        problems: list[str] = []
        for name, answer in zip(names, answers):
            if isinstance(answer, BaseException):  # any failure means "not healthy", reported
                problems.append(f"{name}: {type(answer).__name__}: {answer}"[:300])
                models[name] = {"loaded": False}
            else:
                models[name] = answer
        clip = models.get("clip", {})
        healthy = not problems
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "model_loaded": healthy,
            "model": clip.get("model", "ViT-B/32"),
            "model_name": clip.get("store_tag"),
            "device": clip.get("device"),
            "embedding_size": clip.get("embedding_size"),
            "profile": current_profile(),
            "models": models,
        }
        if problems:
            body["problems"] = problems
        return (200 if healthy else 503), body


def service_info(api_names: list[str]) -> dict[str, Any]:
    """GET / : what this server is and serves; answers without touching the models."""
    return {
        "service": "image-embed",
        "description": "Image embedding and image analysis server (BentoML)",
        "status": "ok",
        "profile": current_profile(),
        "models": [
            {"key": s.key, "model": s.display_name, "embedding_size": s.output_dim, "weights": s.pretrained or "random"}
            for s in list_models()
        ],
        "apis": sorted(api_names),
        "docs": "/docs",
        "health": "/health",
    }
