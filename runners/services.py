"""The model runners a gateway composes, chosen by model key (the interface service.py uses).

    runner_services(["clip", "dinov2"])  ->  {"clip": <clip_runner>, "dino": <dino_runner>}
    runner_of("dinov2")                  ->  "dino"

Each runner hosts exactly the chosen models of the current profile (IMAGE_EMBED_PROFILE) that
name it (`spec.runner`): a dino runner for ["dinov2"] loads only dinov2, needs only its weights
in the model store and offers only `encode_dinov2`. Definitions are memoized, and deterministic
(same keys, same profile, same device kind -> the same definition), because every BentoML worker
process re-imports service.py and must find the same services. Unknown keys raise
models.registry.UnknownModelError listing the known ones.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from models.registry import current_profile, get_spec, list_models
from runners import common
from runners.define import define_runner

# The order of runner_services' answer; runners of new models that are not listed come after.
RUNNER_ORDER = ("clip", "dino", "internvit", "person", "face", "caption")


def runner_of(model_key: str) -> str:
    """The runner hosting `model_key` ("dinov2" -> "dino")."""
    return get_spec(model_key).runner


def _order(runner: str) -> tuple[int, str]:
    return (RUNNER_ORDER.index(runner) if runner in RUNNER_ORDER else len(RUNNER_ORDER), runner)


@functools.cache
def _service(runner: str, keys: tuple[str, ...], profile: str, device_kind: str, engine: str | None) -> Any:
    return define_runner(runner, [get_spec(key, profile) for key in keys], engine)


def runner_services(model_keys: Sequence[str], engine: str | None = None) -> dict[str, Any]:
    """Runner name -> the BentoML service hosting those of `model_keys` it hosts, in
    RUNNER_ORDER, only for runners hosting at least one of them (module docstring); `engine`
    (the Bento's `--arg engine=`) is passed to every runner."""
    profile = current_profile()
    specs = [get_spec(key, profile) for key in dict.fromkeys(model_keys)]  # unknown keys raise here
    hosted: dict[str, list[str]] = {}
    for spec in specs:
        hosted.setdefault(spec.runner, []).append(spec.key)
    kind = common.device_kind()
    return {r: _service(r, tuple(sorted(hosted[r])), profile, kind, engine) for r in sorted(hosted, key=_order)}


def gateway_base(services: dict[str, Any], base: type) -> type:
    """A subclass of `base` with one `bentoml.depends` attribute per runner service, named as
    the runner: the gateway inherits it, so every runner of the registry is composed with no
    line of its own (BentoML finds dependencies among inherited attributes too)."""
    import bentoml

    clashes = sorted(name for name in services if hasattr(base, name) or name.startswith("_"))
    if clashes:
        raise ValueError(f"runner name(s) {clashes} clash with attributes of the gateway; rename the model(s)")
    return type("RunnerDependencies", (base,), {name: bentoml.depends(svc) for name, svc in services.items()})


def check_runner_names(gateway: Any, runners: Sequence[str]) -> None:
    """A runner named like a gateway API or attribute would hide it (or be hidden): refuse."""
    clashes = sorted(name for name in runners if name in gateway.apis or name in vars(gateway.inner))
    if clashes:
        raise ValueError(f"runner name(s) {clashes} clash with the gateway's APIs; rename the model(s)")


def runner_service(runner: str) -> Any:
    """The service of `runner` hosting every model of the current profile that names it."""
    keys = [spec.key for spec in list_models() if spec.runner == runner]
    if not keys:
        known = sorted({spec.runner for spec in list_models()})
        raise ValueError(f"no model of profile {current_profile()!r} is hosted by runner {runner!r}; known: {known}")
    return runner_services(keys)[runner]
