"""One runner definition for every model runner, driven by the model registry.

`define_runner(runner, specs)` builds the `@bentoml.service` class of the runner `runner`
hosting `specs` (all with `spec.runner == runner`):

- name `<runner>_runner`, one worker, traffic timeout RUNNER_TIMEOUT_S and the specs'
  max_concurrency, no session recycling, a GPU share on CUDA (runners/common.py);
- one `bentoml.models.BentoModel(tag)` per model-store entry its engine reads (models/store.py
  `entries`: with `--arg engine=onnx` the ONNX entry alone), so `bentoml build` packs exactly
  those;
- `__init__`: select the device, load each model from the model store on its engine (torch
  or ONNX Runtime, models/onnx_engine.py), one warm-up forward
  per API before /readyz turns green;
- one batchable API per API its family offers (models/families.py), with the spec's batch
  limits for the detected device kind (its max_batch_wait_ms declared for
  runners/batching_wait.py) and the runner metrics (runners/metrics.py);
- tests only: on the tiny profile, IMAGE_EMBED_TEST_FORWARD_DELAY_MS makes each forward sleep
  that long per item, so a burst queues at a tiny model as at a real one;
- `info`: a one-model runner whose model key is its name (clip, internvit, person, face,
  caption) answers that model's fields (common.model_info); a runner hosting differently
  named models (dino) answers `{"key": runner, device..., "models": {key: {...}}}`.

runners/services.py picks the specs and memoizes the services.

Adding a model touches:

    models/catalog/<model>.py    its specs, one per profile (registered on import), naming its `runner`
    models/<family>.py           materialize(spec, dir) and the model class (a new family only)
    models/families.py           the family's entry: module, class, APIs, info fields (a new family only)
    runners/io.py                a new IO kind, only if its APIs take or return something new
    tests/models/...             its spec and model tests (parity with the reference library)

and nothing under runners/ or gateway/ otherwise: a model of an existing family is its catalog
file alone, on an existing runner (dinov2_giant in dino) or a new one; image-embed import-models
imports it as it finds it in the registry, service.py composes every runner of the registry
(runners/services.py gateway_base) and gateway/runner_client.py finds its runner API from the
spec. A new runner may get a section in configuration*.yaml (tests/runners/test_common.py checks
the values there repeat the definitions') and its place in runners/services.py RUNNER_ORDER.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import bentoml

from models.families import Api, family_of
from models.onnx_engine import engine_fields
from models.store import entries
from models.specs import BatchLimits, ModelSpec
from runners import batching_wait, common
from runners.io import IO
from runners.metrics import timed_batch
from runners.shutdown import OutliveGateway


def class_name(runner: str) -> str:
    return "".join(part.title() for part in runner.split("_")) + "Runner"


def hosted_apis(specs: Sequence[ModelSpec]) -> list[tuple[str, ModelSpec, Api]]:
    """(API name, spec, API) of every API the runner of `specs` offers, in spec order."""
    apis = [(api.api_name(spec), spec, api) for spec in specs for api in family_of(spec).apis]
    names = [name for name, _, _ in apis]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"two hosted models offer the same runner API {repeated}")
    return apis


def _runner_of_method(spec: ModelSpec, api: Api) -> Callable[[Any, Any], Any]:
    io = IO[api.io]

    def run(self: Any, batch: Any) -> Any:
        if self.test_delay_s:
            time.sleep(self.test_delay_s * len(batch))
        return getattr(self.models[spec.key], api.method)(*io.args(spec, batch))

    return run


def _batchable(runner: str, name: str, spec: ModelSpec, api: Api, limits: BatchLimits) -> Any:
    func = IO[api.io].make_api(_runner_of_method(spec, api))
    func.__name__, func.__qualname__, func.__doc__ = name, f"{class_name(runner)}.{name}", api.doc
    return bentoml.api(
        batchable=True,
        batch_dim=0,
        max_batch_size=limits.max_batch_size,
        max_latency_ms=limits.max_latency_ms,
    )(batching_wait.declare(timed_batch(runner, name)(func), limits.max_batch_wait_ms))


def test_forward_delay_s(specs: Sequence[ModelSpec]) -> float:
    """IMAGE_EMBED_TEST_FORWARD_DELAY_MS in seconds for a runner of tiny-profile models; 0 otherwise."""
    from config.settings import load_settings

    tiny = all(spec.profile == "tiny" for spec in specs)
    return load_settings().test_forward_delay_ms / 1000.0 if tiny else 0.0


def _init(specs: Sequence[ModelSpec], engine: str | None) -> Callable[[Any], None]:
    warm_ups = [(_runner_of_method(spec, api), IO[api.io].sample(spec)) for _, spec, api in hosted_apis(specs)]

    def __init__(self: Any) -> None:
        from models.device import select_device
        from models.store import load

        self.device = select_device()
        self.models = {spec.key: load(spec, self.device, engine) for spec in specs}
        self.test_delay_s = test_forward_delay_s(specs)
        # One forward per API before /readyz turns green, so the first user request does not
        # pay for lazy initialization (not recorded in the runner metrics).
        for run, sample in warm_ups:
            run(self, sample)

    return __init__


def runner_info(
    runner: str, specs: Sequence[ModelSpec], device: Any, models: dict[str, Any], limits: dict[str, BatchLimits]
) -> dict[str, Any]:
    """The `info` answer of `runner` (module docstring); `limits` maps each API to its limits."""

    def batching(spec: ModelSpec) -> dict[str, BatchLimits]:
        return {api.api_name(spec): limits[api.api_name(spec)] for api in family_of(spec).apis}

    def extra(spec: ModelSpec) -> dict[str, Any]:
        return {**engine_fields(models[spec.key], device), **family_of(spec).info(spec, models[spec.key])}

    if [spec.key for spec in specs] == [runner]:
        return common.model_info(specs[0], device, batching(specs[0]), **extra(specs[0]))
    return {
        "key": runner,
        "device": device.device,
        "device_name": device.name,
        "dtype": device.dtype,
        "profile": specs[0].profile,
        "models": {
            spec.key: {
                **common.model_fields(spec),
                **extra(spec),
                "batching": {name: vars(lim) for name, lim in batching(spec).items()},
            }
            for spec in specs
        },
    }


def define_runner(runner: str, specs: Sequence[ModelSpec], engine: str | None = None) -> Any:
    """The BentoML service of `runner` hosting exactly `specs` (module docstring); `engine`
    (the Bento's `--arg engine=`) overrides IMAGE_EMBED_ENGINE for them."""
    specs = list(specs)
    if not specs:
        raise ValueError(f"runner {runner!r} would host no model")
    strays = [spec.key for spec in specs if spec.runner != runner]
    if strays:
        raise ValueError(f"runner {runner!r} cannot host {strays}: their specs name other runners")
    if len({spec.key for spec in specs}) != len(specs):
        raise ValueError(f"runner {runner!r}: a model is listed twice in {[s.key for s in specs]}")

    kind = common.device_kind()
    apis = hosted_apis(specs)
    limits = {name: spec.batch_limits(api.limits, kind) for name, spec, api in apis}

    def info(self: Any) -> dict:
        return runner_info(runner, specs, self.device, self.models, limits)

    info.__doc__ = "What is loaded, for /health."
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": class_name(runner),
        "__doc__": f"The {runner} runner: {', '.join(spec.key for spec in specs)}.",
        "__init__": _init(specs, engine),
        "info": bentoml.api(info),
    }
    for spec in specs:  # declared so `bentoml build` packs exactly these entries into the Bento
        for tag in entries(spec, engine):
            kind = "onnx_model" if tag == spec.onnx_store_tag else "model"
            namespace[f"{spec.key}_{kind}"] = bentoml.models.BentoModel(tag)
    for name, spec, api in apis:
        namespace[name] = _batchable(runner, name, spec, api, limits[name])
    cls = type(class_name(runner), (OutliveGateway,), namespace)
    return bentoml.service(cls, **common.runner_config(runner, specs))
