"""The name-keyed registry of model specs: one source of truth for runners, APIs and scripts.

Catalog modules (models/catalog/) register their specs on import. A catalog whose specs take
work to describe (reading a library's configuration or the model store: the CLIP models of
IMAGE_EMBED_EXTRA_CLIP) registers a provider instead, asked once per profile, the first time
that profile's models are looked up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from config.settings import load_settings

from .specs import PROFILES, ModelSpec

Provider = Callable[[str], Iterable[ModelSpec]]  # profile -> the specs of that profile

_SPECS: dict[tuple[str, str], ModelSpec] = {}
_PROVIDERS: list[Provider] = []
_PROVIDED: set[tuple[int, str]] = set()  # (provider's position, profile) already registered


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; this one reads as a sentence
        return str(self.args[0])


def register(spec: ModelSpec) -> ModelSpec:
    key = (spec.key, spec.profile)
    if key in _SPECS:
        raise ValueError(f"model {spec.key!r} is already registered for profile {spec.profile!r}")
    _SPECS[key] = spec
    return spec


def register_provider(provider: Provider) -> Provider:
    """Register `provider(profile)`'s specs when `profile` is first looked up (module docstring)."""
    _PROVIDERS.append(provider)
    return provider


def _provide(profile: str) -> None:
    for i, provider in enumerate(_PROVIDERS):
        if (i, profile) in _PROVIDED:
            continue
        _PROVIDED.add((i, profile))  # already while it runs: it may look up other specs
        try:
            specs = list(provider(profile))
        except BaseException:
            _PROVIDED.discard((i, profile))  # all or none: a provider that fails is asked again
            raise
        for spec in specs:
            register(spec)


def current_profile() -> str:
    """IMAGE_EMBED_PROFILE: which weights the specs describe."""
    return load_settings().profile


def get_spec(key: str, profile: str | None = None) -> ModelSpec:
    """The spec of model `key` in `profile` (default: IMAGE_EMBED_PROFILE)."""
    profile = profile or current_profile()
    _provide(profile)
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
    _provide(profile)
    return sorted((s for (_, p), s in _SPECS.items() if p == profile), key=lambda s: s.key)


def find_by_store_tag(store_tag: str, profile: str | None = None) -> ModelSpec | None:
    """The spec of `profile` stored as `store_tag` (what an index or a classifier records), or None."""
    return next((s for s in list_models(profile) if s.store_tag == store_tag), None)


def _load_catalog() -> None:
    """Import every module of models/catalog/: each registers its specs on import."""
    import importlib
    import pkgutil

    from . import catalog

    for module in pkgutil.iter_modules(catalog.__path__):
        importlib.import_module(f"{catalog.__name__}.{module.name}")


_load_catalog()
