"""What every runner shares: its BentoML service config, its batch limits, its info fields.

Runner modules are imported by the gateway too (for `bentoml.depends`), so nothing here
imports torch; the device kind used for batch limits is a cheap probe (models.device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models.device import probe_device_kind
from models.specs import BatchLimits, ModelSpec

# BentoML >= 1.4.31 recycles the HTTP session behind `bentoml.depends()` every 100 requests or
# 300 s and closes the old one while requests are still in flight on it: under concurrency
# those fail with ServerDisconnectedError and the gateway answers 500 (bentoml issue 5540).
# The connections here are local sockets between our own processes, which never need
# recycling, so the limits are set beyond reach. tests/integration/test_concurrency.py
# sends 500 requests from 32 clients and asserts zero 5xx.
NO_SESSION_RECYCLING = {"max_requests": 2**31 - 1, "max_age": 10.0 * 365 * 24 * 3600}

# Runner timeouts stay below the gateway's so a slow model surfaces as a clear error at the
# gateway rather than the gateway itself timing out.
RUNNER_TIMEOUT_S = 50


# On CUDA every model runner asks BentoML for this share of a GPU. With `gpu: 1` each,
# BentoML's allocator gives the first runner GPU 0 and, out of GPUs, the others
# CUDA_VISIBLE_DEVICES=1, 2, ... which do not exist on a one-GPU machine, so they would
# silently fall back to the CPU. Equal fractions are packed onto one GPU (up to 16 runners: the
# six of the catalog and up to ten CLIPs of IMAGE_EMBED_EXTRA_CLIP); configuration-gpu.yaml
# spells this out, and spreads runners over more GPUs where wanted.
GPU_SHARE = 0.0625


def device_kind() -> str:
    return probe_device_kind()


def batch_limits(spec: ModelSpec, api: str) -> BatchLimits:
    return spec.batch_limits(api, device_kind())


def service_config(name: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for `@bentoml.service` of a runner that holds no model (the index)."""
    config: dict[str, Any] = {
        "name": name,
        "workers": 1,
        "traffic": {"timeout": RUNNER_TIMEOUT_S},
        "runner_connection": NO_SESSION_RECYCLING,
        # the gateway writes one JSON access line per request; a line per runner call repeats it
        "logging": {"access": {"enabled": False}},
    }
    config.update(overrides)
    return config


def runner_config(runner: str, specs: Sequence[ModelSpec]) -> dict[str, Any]:
    """Keyword arguments for `@bentoml.service` of the model runner `runner` hosting `specs`.

    The traffic limits live here, not only in configuration*.yaml, so they hold when
    `bentoml serve .` runs without BENTOML_CONFIG: the largest max_concurrency of the models
    it hosts, for the detected device kind."""
    kind = device_kind()
    config = service_config(f"{runner}_runner")
    config["traffic"]["max_concurrency"] = max(spec.max_concurrency[kind] for spec in specs)
    if kind == "cuda":
        config["resources"] = {"gpu": GPU_SHARE}
    return config


def model_fields(spec: ModelSpec) -> dict[str, Any]:
    """Which model a runner serves, in its `info` answer."""
    return {
        "model": spec.display_name,
        "arch": spec.arch,
        "weights": "random (seeded)" if spec.random_weights else spec.pretrained,
        "store_tag": spec.store_tag,
    }


def model_info(spec: ModelSpec, device: Any, batching: dict[str, BatchLimits], **extra: Any) -> dict[str, Any]:
    """What a one-model runner reports about itself (its `info` API, shown by /health)."""
    return {
        "key": spec.key,
        **model_fields(spec),
        "profile": spec.profile,
        "device": device.device,
        "device_name": device.name,
        "dtype": device.dtype,
        **extra,
        "batching": {api: vars(limits) for api, limits in batching.items()},
    }
