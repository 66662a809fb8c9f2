"""CLIP runner: batched image and text embeddings (float32, L2-normalized).

Defined by runners/define.py from the registry (every model of the current profile with
runner "clip"); kept importable for service.py. Subsets: runners.services.runner_services.
"""

from runners.services import runner_service

ClipRunner = runner_service("clip")
