"""The gateway's start-up step: what service.py needs checked and prepared before it defines
the service (`start_up`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config.settings import Settings, load_settings
from models import get_spec
from models.device import DeviceChoice, preflight, probe_device_kind
from models.selection import ServeArguments, served_models
from models.store import loadable_dir

from .patches import apply_bentoml_patches


@dataclass(frozen=True)
class StartUp:
    """What the service definition is built from, checked."""

    settings: Settings  # every IMAGE_EMBED_* variable, validated
    served: tuple[str, ...]  # the model keys this server serves
    engine: str | None  # "onnx": ONNX Runtime alone (the lean image); None: IMAGE_EMBED_ENGINE decides
    runners: dict[str, Any]  # {runner name: its BentoML service}, the runners of `served`
    index_runner: Any  # the index's BentoML service (always: search by vector or key needs no model)


def start_up(arguments: ServeArguments) -> StartUp:
    """Check what `bentoml serve` needs and prepare the service definition; run once, when
    BentoML imports service.py (in the gateway and in every runner worker).

    1. The settings are validated and the served models chosen (`--arg models=...` or
       IMAGE_EMBED_MODELS): a bad value or an unknown name stops the start.
    2. Preflight: a required GPU that is missing stops the start at once, with the fix in the
       message (otherwise BentoML restarts the failing runner forever).
    3. Every served model must be in the model store (with its ONNX graphs where ONNX Runtime
       runs it; with engine=onnx, runnable without torch): else the start stops, naming it.
    4. The runner services are imported only now: they pick batch limits for the device.
    5. BentoML is patched: file fields take uploads only, client errors are 400s
       (gateway/patches.py); the runners' batching dispatchers report each request's queue
       time and hold a request for company at most its model's max_batch_wait_ms
       (runners/batching_wait.py; a BentoML whose dispatcher changed stops the start here).
    """
    settings = load_settings()
    served = served_models(arguments)
    preflight()
    probed = DeviceChoice(device=probe_device_kind(), dtype="", name="")  # the runners' device, without torch
    for key in served:
        loadable_dir(get_spec(key), probed, arguments.engine)

    from runners.batching_wait import install as install_batching_patches
    from runners.index import IndexRunner
    from runners.services import runner_services

    runners = runner_services(served, arguments.engine)
    apply_bentoml_patches()
    install_batching_patches(bounded=settings.batch_wait == "bounded")
    return StartUp(
        settings=settings,
        served=served,
        engine=arguments.engine,
        runners=runners,
        index_runner=IndexRunner,
    )
