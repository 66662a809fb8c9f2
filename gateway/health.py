"""What /health, /readyz and / report, assembled from the registry and the runners' own info."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from models import current_profile, list_models

from .runner_client import RunnerClient
# /readyz asks every runner's own /readyz, concurrently, each within this many seconds (the
# same bound BentoML's own runner probe uses). A runner that is restarting does not answer
# at all (its socket stays open in the arbiter, the connection waits), so the bound matters.
READY_PROBE_TIMEOUT_S = 5.0


async def probe_runner(proxy: Any, timeout: float = READY_PROBE_TIMEOUT_S) -> str | None:
    """None when the runner's /readyz answers 200, else why not (one short line).

    BentoML's RemoteProxy.is_ready only catches its own timeout: a dead runner makes it raise
    (ServerDisconnectedError, ClientConnectorError), and BentoML's /readyz then answers 500.
    Here every failure is an answer: "not ready".
    """
    try:
        ready = await asyncio.wait_for(proxy.is_ready(timeout), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        return f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001  (any failure to answer means "not ready")
        return f"{type(exc).__name__}: {exc}"[:200]
    return None if ready else "its /readyz did not answer 200"


def not_ready_error(down: dict[str, str]) -> Exception:
    """The 503 that /readyz answers: JSON naming each runner that is down and why.

    Raised from `__is_ready__` (BentoML answers its own 503 with a fixed text otherwise);
    Starlette renders an HTTPException's detail as the body, with the headers given here.
    """
    from starlette.exceptions import HTTPException

    names = ", ".join(sorted(down))
    body = {"error": "not_ready", "detail": f"runner(s) not ready: {names}", "runners": down}
    headers = {"Content-Type": "application/json", "Retry-After": "1"}
    return HTTPException(status_code=503, detail=json.dumps(body), headers=headers)


class Health:
    """/health and /readyz over the runners this server starts (`RunnerClient.proxies`)."""

    def __init__(self, runners: RunnerClient) -> None:
        self.runners = runners

    async def runners_not_ready(self, timeout: float = READY_PROBE_TIMEOUT_S) -> dict[str, str]:
        """{runner: why} for every remote runner whose /readyz does not answer 200 in time.

        Runners resolved in-process (no `is_ready`: tests, development) have nothing to probe.
        """
        proxies = {n: p for n, p in self.runners.proxies.items() if callable(getattr(p, "is_ready", None))}
        answers = await asyncio.gather(*(probe_runner(p, timeout) for p in proxies.values()))
        return {name: why for name, why in zip(proxies, answers) if why is not None}

    async def check_ready(self) -> bool:
        """BentoML's /readyz hook: True when every runner is ready, else a JSON 503 naming them.

        configuration.yaml turns BentoML's own runner probe off for the gateway, as it turns a
        dead runner into a 500; /livez stays 200 as long as the gateway itself serves.
        """
        down = await self.runners_not_ready()
        if down:
            raise not_ready_error(down)
        return True

    async def report(self) -> tuple[int, dict[str, Any]]:
        """(status code, body) for GET /health: 200 when every runner answers, else 503."""
        names = list(self.runners.proxies)
        # Ask the runners each time (concurrently): a cached answer would hide a dead runner.
        answers = await asyncio.gather(*(self.runners.info(n) for n in names), return_exceptions=True)
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
            "served_models": list(self.runners.served),
            "models": models,
        }
        if problems:
            body["problems"] = problems
        return (200 if healthy else 503), body


def service_info(api_names: list[str], served: list[str]) -> dict[str, Any]:
    """GET / : what this server is and serves; answers without touching the models."""
    return {
        "service": "image-embed",
        "description": "Image embedding and image analysis server (BentoML)",
        "status": "ok",
        "profile": current_profile(),
        "models": [
            {"key": s.key, "model": s.display_name, "embedding_size": s.output_dim, "weights": s.pretrained or "random"}
            for s in list_models()
            if s.key in served
        ],
        "apis": sorted(api_names),
        "docs": "/docs",
        "health": "/health",
    }
