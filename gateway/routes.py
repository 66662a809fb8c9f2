"""The route modules of one gateway worker, composed over one runner client and the settings.

The BentoML APIs (service.py) delegate to these objects, and the plain HTTP routes
(gateway/web.py) receive the same objects by type (gateway/bound.py)."""

from __future__ import annotations

from config.settings import Settings
from models import get_spec

from .analyze.api import AnalyzeRoutes
from .compat import CompatRoutes
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


class Routes:
    """Each route module gets the one settings object, typed as the section it reads."""

    def __init__(self, runners: RunnerClient, settings: Settings) -> None:
        self.runners = runners
        self.health = Health(runners)
        images = ImageLoader(settings=settings)
        self.images = images
        self.encode = EncodeRoutes(runners, images, settings)
        self.internvit = InternVitRoutes(runners, images, get_spec("internvit"), settings)
        self.search = SearchRoutes(runners, images, self.encode, settings)
        self.admin = IndexAdminRoutes(runners, self.encode, settings.max_items)
        self.analyze = AnalyzeRoutes(runners, images, settings)
        self.compat = CompatRoutes(runners, images, self.encode, self.internvit, settings.test_extract)
        self.openai = OpenAIRoutes(runners, self.encode, settings)
        self.rank = RankRoutes(runners, self.encode)
        self.library = LibraryRoutes(runners)

    def objects(self) -> list[object]:
        """Every route object, one per type, for the plain HTTP routes (gateway/bound.py)."""
        return list(vars(self).values())
