"""The gateway: one BentoML service composing the model runners into the public APIs.

    bentoml serve .          (bentofile.yaml names this service)

Thin by design: each API group lives in gateway/ as a mixin, each model in runners/.
"""

from __future__ import annotations

from pathlib import Path

import bentoml

from gateway.access_log import AccessLogMiddleware, access_log_enabled
from gateway.admission import AdmissionMiddleware
from gateway.analyze.api import AnalyzeAPI
from gateway.auth import APIKeyMiddleware, load_api_keys
from gateway.body_limit import BodyLimitMiddleware
from gateway.encode import EncodeAPI
from gateway.health import HealthMixin
from gateway.images import ImageLoader
from gateway.index_admin import IndexAdminAPI
from gateway.internvit import InternVitAPI
from gateway.openapi import complete_spec
from gateway.patches import refuse_server_side_file_fetch
from gateway.search import SearchAPI
from gateway.seed000 import Seed000API, extract_mode_setting
from gateway.settings import GatewaySettings
from gateway.shutdown import GracefulShutdown
from gateway.web import web_app
from intake.settings import IntakeSettings
from models import get_spec, list_models
from models.device import preflight
from models.store import model_dir
from models.views import LevelSettings

# Fail `bentoml serve` at once, with the fix in the message, when a required GPU is missing
# or a model was never imported; otherwise BentoML restarts the failing runner forever.
preflight()
for _spec in list_models():
    model_dir(_spec)

from runners.caption import CaptionRunner  # noqa: E402  (runners after the preflight: they pick batch limits per device)
from runners.clip import ClipRunner  # noqa: E402
from runners.dino import DinoRunner  # noqa: E402
from runners.index import IndexRunner  # noqa: E402
from runners.internvit import InternVitRunner  # noqa: E402
from runners.face import FaceRunner  # noqa: E402
from runners.person import PersonRunner  # noqa: E402
from runners.shutdown import GATEWAY_SERVICE  # noqa: E402
from runners.queue_time import install as install_queue_time_metric  # noqa: E402

refuse_server_side_file_fetch()
# Every worker (gateway and runners) imports this module before BentoML builds its app: the
# runners' batching dispatchers then report each request's queue time (image_embed_queue_seconds).
install_queue_time_metric()
LIMITS = GatewaySettings.from_env()
INTAKE = IntakeSettings.from_env()  # URL policy, allow-list, image limits; a bad setting stops the start
LEVELS = LevelSettings.from_env()  # InternViT's three-level views; a bad setting stops the start
TEST_EXTRACT_MODE = extract_mode_setting()

# The gateway's timeout is longer than every runner's, so a slow model is reported by the
# gateway as a clear error instead of the gateway itself timing out.
GATEWAY_TIMEOUT_S = 60



def _no_deps_requirements() -> str:
    lines = (Path(__file__).parent / "requirements-nodeps.txt").read_text().splitlines()
    return " ".join(line.strip() for line in lines if line.strip() and not line.startswith("#"))


# The Bento's container image: the pinned requirements, then the packages whose own pins
# conflict with ours, without their dependencies (see requirements-nodeps.txt; the command
# runs before the bundle's files are copied in, so it names the packages itself).
IMAGE = (
    bentoml.images.Image(python_version="3.11", lock_python_packages=False)
    .requirements_file("requirements.txt")
    .run(f"uv pip install --no-deps {_no_deps_requirements()}")
)


@bentoml.asgi_app(web_app, path="/")
@bentoml.service(name=GATEWAY_SERVICE, image=IMAGE, traffic={"timeout": GATEWAY_TIMEOUT_S})
class ImageEmbed(
    EncodeAPI, AnalyzeAPI, InternVitAPI, Seed000API, SearchAPI, IndexAdminAPI, HealthMixin, GracefulShutdown
):
    clip = bentoml.depends(ClipRunner)
    person = bentoml.depends(PersonRunner)
    face = bentoml.depends(FaceRunner)
    caption = bentoml.depends(CaptionRunner)
    dino = bentoml.depends(DinoRunner)  # encode_dinov2 / encode_dinov3
    internvit = bentoml.depends(InternVitRunner)
    index = bentoml.depends(IndexRunner)

    def __init__(self) -> None:
        self.pin_runner_sockets()  # first: before any runner attribute is used
        self.clip_spec = get_spec("clip")
        self.dinov2_spec = get_spec("dinov2")
        self.internvit_spec = get_spec("internvit")
        self.levels = LEVELS
        self.test_extract_mode = TEST_EXTRACT_MODE
        self.limits = LIMITS
        self.images = ImageLoader(settings=INTAKE)
        self.init_analyze()

    def api_names(self) -> list[str]:
        return list(ImageEmbed.apis)

    def runner_names(self) -> list[str]:
        return list(ImageEmbed.dependencies)

    def openapi_document(self) -> dict:
        return complete_spec(ImageEmbed.openapi_spec.asdict())

    @bentoml.on_shutdown
    async def close_fetcher(self) -> None:
        await self.images.aclose()


# Added first = outermost of ours: the access log sees every answer (429, 401, 413 included),
# a request beyond IMAGE_EMBED_MAX_IN_FLIGHT is refused before anything else is done for it,
# the key is checked before any body is read, and oversized bodies are cut off before parsing.
if access_log_enabled():
    ImageEmbed.add_asgi_middleware(AccessLogMiddleware)
ImageEmbed.add_asgi_middleware(AdmissionMiddleware, max_in_flight=LIMITS.max_in_flight)
if API_KEYS := load_api_keys():
    ImageEmbed.add_asgi_middleware(APIKeyMiddleware, keys=API_KEYS)
ImageEmbed.add_asgi_middleware(BodyLimitMiddleware, max_bytes=LIMITS.max_body_bytes)
