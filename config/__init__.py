"""Configuration: every IMAGE_EMBED_* variable, declared, validated and documented once."""

from .settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
