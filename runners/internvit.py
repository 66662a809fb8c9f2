"""InternViT runner: mean-pooled patch-token embeddings of whole images and of views.

Defined by runners/define.py from the registry (every model of the current profile with
runner "internvit"); kept importable for service.py. Subsets: runners.services.runner_services.
"""

from runners.services import runner_service

InternVitRunner = runner_service("internvit")
