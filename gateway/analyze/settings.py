"""Settings of the analyze API: a view of config.settings (IMAGE_EMBED_MAX_TASKS,
IMAGE_EMBED_CLASSIFIERS_DIR; documented in docs/configuration.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.settings import Settings, load_settings

DEFAULT_CLASSIFIERS_DIR = str(Settings.model_fields["classifiers_dir"].default)


@dataclass(frozen=True, kw_only=True)
class AnalyzeSettings:
    max_tasks: int = 32
    classifiers_dir: Path = Path(DEFAULT_CLASSIFIERS_DIR)

    @classmethod
    def from_settings(cls, s: Settings) -> "AnalyzeSettings":
        return cls(max_tasks=s.max_tasks, classifiers_dir=s.classifiers_dir)

    @classmethod
    def from_env(cls) -> "AnalyzeSettings":
        return cls.from_settings(load_settings())
