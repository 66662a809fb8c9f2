"""`python -m bench [--scenario NAME] [its options]`: the one entry point of the benchmarks.
Without --scenario, `clip` (bench/clip.py); `python -m bench --scenario NAME -h` shows that
scenario's options. Exit status: the scenario's (2 for a usage error, 130 on Ctrl-C)."""

from __future__ import annotations

import argparse
import importlib
import sys

from bench import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    pick = argparse.ArgumentParser(prog="python -m bench", add_help=False)
    pick.add_argument("--scenario", choices=list(SCENARIOS), default="clip")
    chosen, rest = pick.parse_known_args(sys.argv[1:] if argv is None else argv)
    return importlib.import_module(SCENARIOS[chosen.scenario]).main(rest)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted (every server this run started has been stopped)", file=sys.stderr)
        sys.exit(130)
