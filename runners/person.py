"""Person runner: batched Faster R-CNN person detection on letterboxed images.

Defined by runners/define.py from the registry (every model of the current profile with
runner "person"); kept importable for service.py. Subsets: runners.services.runner_services.
"""

from runners.services import runner_service

PersonRunner = runner_service("person")
