"""The model library the runners call: specs, registry, device choice, preprocessing, loaders."""

from .registry import current_profile, get_spec, list_models, register
from .specs import PROFILES, BatchLimits, ModelSpec

__all__ = [
    "PROFILES",
    "BatchLimits",
    "ModelSpec",
    "current_profile",
    "get_spec",
    "list_models",
    "register",
]
