"""The name-keyed registry of model specs: one source of truth for runners, APIs and scripts."""

from __future__ import annotations

from .settings import current_profile
from .specs import PROFILES, ModelSpec

_SPECS: dict[tuple[str, str], ModelSpec] = {}


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return str(self.args[0])


def register(spec: ModelSpec) -> ModelSpec:
    key = (spec.key, spec.profile)
    if key in _SPECS:
        raise ValueError(f"model {spec.key!r} is already registered for profile {spec.profile!r}")
    _SPECS[key] = spec
    return spec


def get_spec(key: str, profile: str | None = None) -> ModelSpec:
    """The spec of model `key` in `profile` (default: IMAGE_EMBED_PROFILE)."""
    profile = profile or current_profile()
    try:
        return _SPECS[(key, profile)]
    except KeyError:
        known = sorted({k for k, p in _SPECS if p == profile})
        raise UnknownModelError(f"no model {key!r} in profile {profile!r}; known: {known}") from None


def list_models(profile: str | None = None) -> list[ModelSpec]:
    """Every spec of `profile` (default: IMAGE_EMBED_PROFILE), sorted by key."""
    profile = profile or current_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
    return sorted((s for (_, p), s in _SPECS.items() if p == profile), key=lambda s: s.key)


def _load_catalog() -> None:
    """Import every module of models/catalog/: each registers its specs on import."""
    import importlib
    import pkgutil

    from . import catalog

    for module in pkgutil.iter_modules(catalog.__path__):
        importlib.import_module(f"{catalog.__name__}.{module.name}")


_load_catalog()
