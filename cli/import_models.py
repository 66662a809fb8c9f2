"""Put the weights of every model of a profile into the BentoML model store.

    image-embed import-models                  # default profile: pretrained weights (network)
    image-embed import-models --profile tiny   # tiny twins, seeded random weights, offline
    image-embed import-models --profile bench  # real architectures, random weights, offline
    image-embed import-models --models clip,face   # only these (default: $IMAGE_EMBED_MODELS, else all)

Without a choice of models, the default profile leaves out the gated ones (DINOv3: its hub
repository needs a token) when no Hugging Face token is set, and says so in one line.
`--print-served` prints the models to serve (comma-separated) on stdout, for `make serve`;
everything else goes to stderr.

Each model gets an entry with its weights and, for the embedding models, an ONNX entry with
its graphs (fp32 and dynamic int8, models/onnx_engine.py) and what ONNX Runtime serving reads
beside them (CLIP's text tokenizer and logit scale), so a server exports nothing and the lean
image (`bentoml build --arg engine=onnx`) packs the ONNX entries alone (models/store.py).
Idempotent: a model already in the store (same spec fingerprint) is skipped. A model an older
version imported is completed offline from the weights already in the store (the missing
files written, the ONNX entry made), with one line saying what was added. `bentoml models
list` shows the results; each entry carries its spec as metadata.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from cli.arguments import settings, tool_parser



def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from models.specs import PROFILE_HELP, PROFILES

    environment = settings()
    parser = tool_parser("import-models", __doc__)
    parser.epilog += "\n\nprofiles:\n" + "\n".join(f"  {p:8s} {PROFILE_HELP[p]}" for p in PROFILES)
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default=environment.profile,
        help="which profile's models to import (default: $IMAGE_EMBED_PROFILE or 'default')",
    )
    parser.add_argument("--only", nargs="+", metavar="KEY", help="import only these model keys (e.g. clip)")
    parser.add_argument(
        "--models",
        default=",".join(environment.models),
        help="comma-separated model keys to import (default: $IMAGE_EMBED_MODELS, else every model)",
    )
    parser.add_argument("--print-served", action="store_true", help="print the chosen models on stdout")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from models import list_models
    from models.hub import WeightsDownloadError
    from models.store import import_spec, is_imported

    # open_clip logs a warning for every randomly initialized model: expected here.
    logging.getLogger().setLevel(logging.ERROR)
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    from models.selection import check_models, default_selection, left_out_line, parse_model_list
    from config.settings import SettingsError

    chosen = list(args.only or []) + parse_model_list(args.models)
    try:
        if chosen:
            keys = check_models(chosen, args.profile, source="--models")
        else:
            keys, left_out = default_selection(args.profile, have_token=hub_token_set())
            if left_out:
                print(left_out_line(left_out), file=sys.stderr)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    specs = [s for s in list_models(args.profile) if s.key in keys]

    bar = tqdm(specs, desc=f"importing ({args.profile})", unit="model", file=sys.stderr)
    for spec in bar:
        bar.set_postfix_str(spec.store_tag)
        if is_imported(spec):
            tqdm.write(f"  {spec.store_tag}: already in the model store, skipped", file=sys.stderr)
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
                "    image-embed import-models --profile tiny\n"
                "    IMAGE_EMBED_PROFILE=tiny bentoml serve .\n"
                "or measure speed offline with the real architectures: --profile bench",
                file=sys.stderr,
            )
            return 1
        seconds = time.monotonic() - started
        if result.new:
            tqdm.write(f"  {result.tag}: imported in {seconds:.1f} s", file=sys.stderr)
        else:
            added = ", ".join(result.added)
            tqdm.write(f"  {result.tag}: completed offline from its weights in the store: added {added} "
                       f"({seconds:.1f} s)", file=sys.stderr)
    print(f"done: {len(specs)} model(s) of profile {args.profile!r} in the store (see `bentoml models list`)", file=sys.stderr)
    if args.print_served:
        print(",".join(keys))
    return 0


def hub_token_set() -> bool:
    """A Hugging Face token in HF_TOKEN (or the hub's own token file)."""
    try:
        from huggingface_hub import get_token

        return bool(get_token())
    except ImportError:
        return bool(os.environ.get("HF_TOKEN"))


if __name__ == "__main__":
    sys.exit(main())
