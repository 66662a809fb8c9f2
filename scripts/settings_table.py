"""Write or check docs/configuration.md, the table of IMAGE_EMBED_* variables generated from
config/settings.py.

    .venv/bin/python -m scripts.settings_table --write   # regenerate the file
    .venv/bin/python -m scripts.settings_table --check   # exit 1 when the file is out of date
"""

from __future__ import annotations

import argparse
import sys

from config.docs import DOC_PATH, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="regenerate docs/configuration.md")
    mode.add_argument("--check", action="store_true", help="fail when docs/configuration.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOC_PATH.write_text(text)
        print(f"wrote {DOC_PATH}")
        return 0
    if not DOC_PATH.exists() or DOC_PATH.read_text() != text:
        print(f"{DOC_PATH} is out of date: run .venv/bin/python -m scripts.settings_table --write", file=sys.stderr)
        return 1
    print(f"{DOC_PATH} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
