#!/usr/bin/env python
"""Put the weights of every model of a profile into the BentoML model store.

    python scripts/import_models.py                  # default profile: pretrained weights (network)
    python scripts/import_models.py --profile tiny   # tiny twins, seeded random weights, offline
    python scripts/import_models.py --profile bench  # real architectures, random weights, offline

Idempotent: a model already in the store (same spec fingerprint) is skipped. `bentoml models
list` shows the results; each model carries its spec as metadata.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from models.specs import PROFILE_HELP, PROFILES

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="profiles:\n" + "\n".join(f"  {p:8s} {PROFILE_HELP[p]}" for p in PROFILES),
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default=os.environ.get("IMAGE_EMBED_PROFILE") or "default",
        help="which profile's models to import (default: $IMAGE_EMBED_PROFILE or 'default')",
    )
    parser.add_argument("--only", nargs="+", metavar="KEY", help="import only these model keys (e.g. clip)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from models import list_models
    from models.hub import WeightsDownloadError
    from models.store import find, import_spec

    # open_clip logs a warning for every randomly initialized model: expected here.
    logging.getLogger().setLevel(logging.ERROR)
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    specs = list_models(args.profile)
    if args.only:
        unknown = sorted(set(args.only) - {s.key for s in specs})
        if unknown:
            print(f"error: no model {unknown} in profile {args.profile!r}", file=sys.stderr)
            return 2
        specs = [s for s in specs if s.key in args.only]

    bar = tqdm(specs, desc=f"importing ({args.profile})", unit="model")
    for spec in bar:
        bar.set_postfix_str(spec.store_tag)
        if find(spec) is not None:
            tqdm.write(f"  {spec.store_tag}: already in the model store, skipped")
            continue
        started = time.monotonic()
        try:
            result = import_spec(spec)
        except WeightsDownloadError as exc:
            bar.close()
            print(
                f"\nerror: {exc}\n\n"
                f"The {args.profile!r} profile needs pretrained weights from the network. Without network,\n"
                "use the offline tiny profile (same code paths, tiny random-weight models):\n"
                "    python scripts/import_models.py --profile tiny\n"
                "    IMAGE_EMBED_PROFILE=tiny bentoml serve .\n"
                "or measure speed offline with the real architectures: --profile bench",
                file=sys.stderr,
            )
            return 1
        tqdm.write(f"  {result.tag}: imported in {time.monotonic() - started:.1f} s")
    print(f"done: {len(specs)} model(s) of profile {args.profile!r} in the store (see `bentoml models list`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
