"""Caption runner: BLIP captions, batched across requests, each with its own max_length.

Defined by runners/define.py from the registry (every model of the current profile with
runner "caption"); kept importable for service.py. Subsets: runners.services.runner_services.
"""

from runners.io import CaptionRequest
from runners.services import runner_service

__all__ = ["CaptionRequest", "CaptionRunner"]

CaptionRunner = runner_service("caption")
