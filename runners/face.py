"""Face runner: batched MTCNN face detection on letterboxed images.

Defined by runners/define.py from the registry (every model of the current profile with
runner "face"); kept importable for service.py. Subsets: runners.services.runner_services.
"""

from runners.services import runner_service

FaceRunner = runner_service("face")
