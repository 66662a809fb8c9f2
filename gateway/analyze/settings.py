"""Settings of the analyze API, read from the environment.

    IMAGE_EMBED_MAX_TASKS        tasks per analyze request (default 32)
    IMAGE_EMBED_CLASSIFIERS_DIR  where `classify` finds best_models.json and the classifiers
                                 (default: trained_classifiers, relative to the working directory)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from intake.settings import env_int

DEFAULT_CLASSIFIERS_DIR = "trained_classifiers"


@dataclass(frozen=True, kw_only=True)
class AnalyzeSettings:
    max_tasks: int = 32
    classifiers_dir: Path = Path(DEFAULT_CLASSIFIERS_DIR)

    @classmethod
    def from_env(cls) -> "AnalyzeSettings":
        d = cls()
        return cls(
            max_tasks=env_int("IMAGE_EMBED_MAX_TASKS", d.max_tasks),
            classifiers_dir=Path(os.environ.get("IMAGE_EMBED_CLASSIFIERS_DIR", "").strip() or d.classifiers_dir),
        )
