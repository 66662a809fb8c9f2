"""TEMPORARY (lead's shim until the registry-driven runner definition lands)."""

from __future__ import annotations

from collections.abc import Sequence

RUNNER_OF = {"clip": "clip", "dinov2": "dino", "dinov3": "dino", "dinov2_giant": "dino", "internvit": "internvit",
             "person": "person", "face": "face", "caption": "caption"}


def runner_of(model_key: str) -> str:
    return RUNNER_OF[model_key]


def runner_services(model_keys: Sequence[str]) -> dict:
    from runners.caption import CaptionRunner
    from runners.clip import ClipRunner
    from runners.dino import DinoRunner
    from runners.face import FaceRunner
    from runners.internvit import InternVitRunner
    from runners.person import PersonRunner

    classes = {"clip": ClipRunner, "dino": DinoRunner, "internvit": InternVitRunner, "person": PersonRunner,
               "face": FaceRunner, "caption": CaptionRunner}
    wanted = {runner_of(k) for k in model_keys}
    return {name: svc for name, svc in classes.items() if name in wanted}
