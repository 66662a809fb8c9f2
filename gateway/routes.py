"""The route modules of one gateway worker, composed over one runner client and the settings.

The BentoML APIs (service.py) delegate to these objects, and the plain HTTP routes
(gateway/web.py) receive the same objects by type (gateway/bound.py)."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import Settings
from intake.settings import IntakeSettings
from models import get_spec
from models.views import LevelSettings

from .analyze.api import AnalyzeRoutes
from .analyze.settings import AnalyzeSettings
from .compat import CompatRoutes, extract_mode_setting
from .encode import EncodeRoutes
from .health import Health
from .images import ImageLoader
from .index_admin import IndexAdminRoutes
from .internvit import InternVitRoutes
from .library import LibraryRoutes
from .openai_embeddings import OpenAIRoutes
from .rank import RankRoutes
from .runner_client import RunnerClient
from .search import SearchRoutes
from .settings import GatewaySettings
from .thumbnails import ThumbnailSettings


@dataclass(frozen=True, kw_only=True)
class RouteSettings:
    """The views of config.settings the routes read."""

    limits: GatewaySettings
    intake: IntakeSettings  # URL policy, allow-list, image limits
    levels: LevelSettings  # InternViT's three-level views
    analyze: AnalyzeSettings
    test_extract: str  # what /embedding/test_extract answers: simple or combined
    thumbnails: ThumbnailSettings  # stored at index time, for the UI

    @classmethod
    def from_settings(cls, s: Settings) -> "RouteSettings":
        return cls(
            limits=GatewaySettings.from_settings(s),
            intake=IntakeSettings.from_settings(s),
            levels=LevelSettings.from_settings(s),
            analyze=AnalyzeSettings.from_settings(s),
            test_extract=extract_mode_setting(s),
            thumbnails=ThumbnailSettings.from_settings(s),
        )


class Routes:
    def __init__(self, runners: RunnerClient, settings: RouteSettings) -> None:
        self.runners = runners
        self.health = Health(runners)
        images = ImageLoader(settings=settings.intake)
        self.images = images
        self.encode = EncodeRoutes(runners, images, settings.limits)
        self.internvit = InternVitRoutes(runners, images, get_spec("internvit"), settings.levels)
        self.search = SearchRoutes(runners, images, self.encode, settings.thumbnails)
        self.admin = IndexAdminRoutes(runners, self.encode, settings.limits.max_items)
        self.analyze = AnalyzeRoutes(runners, images, settings.analyze)
        self.compat = CompatRoutes(runners, images, self.encode, self.internvit, settings.test_extract)
        self.openai = OpenAIRoutes(runners, self.encode, settings.limits)
        self.rank = RankRoutes(runners, self.encode)
        self.library = LibraryRoutes(runners)

    def objects(self) -> list[object]:
        """Every route object, one per type, for the plain HTTP routes (gateway/bound.py)."""
        return list(vars(self).values())
