"""What every `image-embed` tool starts from: its argument parser (its name on the command line,
and its module docstring as the help: the first paragraph the summary, the rest, examples
included, below the options), and the IMAGE_EMBED_* settings, read through the one Settings
class (config/settings.py) as the server reads them."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings


def tool_parser(verb: str, doc: str | None) -> argparse.ArgumentParser:
    summary, _, details = (doc or "").partition("\n\n")
    return argparse.ArgumentParser(
        prog=f"image-embed {verb}",
        description=summary,
        epilog=details,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def settings() -> Settings:
    """The environment's IMAGE_EMBED_* settings; a bad value ends the tool with exit status 2,
    naming the variable and what it accepts."""
    from config.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
