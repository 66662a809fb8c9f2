"""DINO runner: DINOv2, DINOv2 ViT-g/14 and DINOv3 global image embeddings in one process.

Defined by runners/define.py from the registry (every model of the current profile with
runner "dino"); kept importable for service.py. Subsets: runners.services.runner_services.
"""

from runners.services import runner_service

DinoRunner = runner_service("dino")
