"""Convert the image-analysis service's scikit-learn classifiers into this server's safe format, offline.

    image-embed convert-classifiers OLD_DIR --i-trust-these-files [--out DIR] [--model KEY]

OLD_DIR is the old service's `trained_classifiers/`: per collection
`collection_<id>_compatible_classifier.pkl` (the production model, pickle protocol 4) and the
`collection_<id>_classifier_<date>.pkl` versions (joblib), and `best_models.json`, which maps
each collection id to its best version's file name, or (later versions) to
`{"model_file", "derivative_type", "embedding_type", "dimensionality"}`.

UNPICKLING RUNS CODE. The .pkl files are loaded with joblib (pickle), which executes whatever a
file says: convert only files you made yourself, on your own machine. The script refuses to
start without --i-trust-these-files and warns either way. The server never unpickles: it reads
what this writes, plain float32 arrays (`.npz`, allow_pickle=False) and JSON.

For each collection (those best_models.json names and those with a compatible pickle): the
compatible pickle, else the file best_models.json names, must hold a binary LogisticRegression,
or a Pipeline of StandardScalers ending in one (the scaling is folded into the weights:
(w / s) . x + b - w . (m / s)). It is written to --out as `collection_<id>_converted`
(.npz + .json), with its embedding model: the store tag of --model, else of the model whose
analyze task best_models.json names as its embedding_type (embed_clip_vit_b_32 -> clip), else
of clip (the same CLIP ViT-B/32). Then best_models.json of --out points `classify` at it, and
each conversion is checked: on random unit vectors, the server's probability equals
scikit-learn's predict_proba within 1e-6. Exit status 1 when a collection could not be
converted (the others are).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

from cli.arguments import settings, tool_parser


WARNING = (
    "warning: unpickling runs code. The .pkl files are loaded with joblib/pickle, which executes "
    "whatever they contain: convert only classifier files you made yourself."
)
COMPATIBLE = re.compile(r"^collection_(?P<id>[A-Za-z0-9_-]{1,100})_compatible_classifier\.pkl$")
INDEX = "best_models.json"
TOLERANCE = 1e-6


class ConversionError(Exception):
    """This collection cannot be converted; the message says why."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = tool_parser("convert-classifiers", __doc__)
    p.add_argument("source", type=Path, help="the old service's trained_classifiers/ folder")
    p.add_argument("--out", type=Path, default=settings().classifiers_dir,
                   help="the classifier folder the server reads (default: $IMAGE_EMBED_CLASSIFIERS_DIR or trained_classifiers); "
                   "not the source folder")
    p.add_argument("--model", help="the model key whose vectors they were trained on (default: from best_models.json, else clip)")
    p.add_argument("--i-trust-these-files", action="store_true", help="required: the .pkl files are yours (unpickling runs code)")
    return p.parse_args(argv)


def collections(source: Path) -> dict[str, dict]:
    """{collection id: its best_models.json entry as a dict (empty when it has none)}."""
    entries: dict[str, dict] = {}
    index = source / INDEX
    if index.exists():
        data = json.loads(index.read_text())
        if not isinstance(data, dict):
            raise ConversionError(f"{index} is not a JSON object of collection ids")
        for cid, entry in data.items():
            entries[str(cid)] = {"model_file": entry} if isinstance(entry, str) else dict(entry)
    for path in source.iterdir():
        match = COMPATIBLE.match(path.name)
        if match:
            entries.setdefault(match["id"], {})
    return dict(sorted(entries.items()))


def pickle_file(source: Path, cid: str, entry: dict) -> Path:
    compatible = source / f"collection_{cid}_compatible_classifier.pkl"
    if compatible.is_file():
        return compatible
    named = entry.get("model_file")
    if named and Path(named).name == named and (source / named).is_file():
        return source / named
    raise ConversionError(f"neither {compatible.name} nor the file best_models.json names ({named!r}) is in {source}")


def positive_class(classes) -> int | None:
    """The index of "in the collection" among the classes: True, or 1."""
    return next((i for i, c in enumerate(classes) if c == 1), None)


def linear_weights(model) -> tuple[np.ndarray, float]:
    """(coef, intercept) with P(in collection) = sigmoid(coef . x + intercept), as predict_proba."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else [model]
    *scalers, head = steps
    if not isinstance(head, LogisticRegression) or not all(isinstance(s, StandardScaler) for s in scalers):
        kinds = " -> ".join(type(s).__name__ for s in steps)
        raise ConversionError(
            f"holds {kinds}; only a LogisticRegression (after StandardScalers) converts to plain weights"
        )
    classes = list(head.classes_)
    if head.coef_.shape[0] != 1 or len(classes) != 2:
        raise ConversionError(f"is not a binary classifier (classes {classes})")
    positive = positive_class(classes)
    if positive is None:
        raise ConversionError(f"has no True or 1 class to call 'in the collection' (classes {classes})")
    coef, intercept = head.coef_[0].astype(np.float64), float(head.intercept_[0])
    for scaler in reversed(scalers):  # w . (x - m) / s + b  =  (w / s) . x + (b - w . m / s)
        scale = scaler.scale_ if scaler.with_std else np.ones_like(coef)
        mean = scaler.mean_ if scaler.with_mean else np.zeros_like(coef)
        coef = coef / scale
        intercept -= float(coef @ mean)
    sign = 1.0 if positive == 1 else -1.0  # predict_proba[:, 1] is sigmoid(decision): the other class flips it
    return sign * coef, sign * intercept


def embedding_model(entry: dict, key: str | None):
    """The spec whose vectors the classifier was trained on (module docstring)."""
    from models import get_spec, list_models

    if key:
        return get_spec(key)
    kind = entry.get("embedding_type")
    if not kind:
        return get_spec("clip")
    found = next((s for s in list_models() if s.analyze_task == kind), None)
    if found is None:
        raise ConversionError(f"was trained on {kind!r} vectors, which no model here makes (pass --model KEY)")
    return found


def parity_gap(model, converted) -> float:
    """Max |the server's probability (`converted`, as it loads it) - predict_proba| on random
    float32 unit vectors, as the server's embeddings are."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, converted.coef.shape[0]))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    expected = model.predict_proba(x)[:, positive_class(model.classes_)]
    return float(max(abs(converted.probability(v) - p) for v, p in zip(x, expected)))


def convert(source: Path, out: Path, cid: str, entry: dict, key: str | None) -> dict:
    import joblib
    import sklearn

    from gateway.analyze.classifiers import load_classifier, save_classifier

    path = pickle_file(source, cid, entry)
    try:
        model = joblib.load(path)  # runs the file's code: --i-trust-these-files
        coef, intercept = linear_weights(model)
    except ConversionError as exc:
        raise ConversionError(f"{path.name} {exc}") from None
    except Exception as exc:  # noqa: BLE001  (any unreadable pickle is this collection's error)
        raise ConversionError(f"{path.name} could not be loaded: {type(exc).__name__}: {exc}") from None
    spec = embedding_model(entry, key)
    if coef.shape[0] != spec.output_dim:
        raise ConversionError(
            f"{path.name} takes {coef.shape[0]}-d vectors; {spec.key} makes {spec.output_dim}-d (pass --model KEY)"
        )
    name = f"collection_{cid}_converted"
    save_classifier(out, name, coef, intercept, {
        "collection_id": cid,
        "embedding_model": spec.store_tag,
        "converted_from": path.name,
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "trainer": f"{type(model).__name__} (scikit-learn), converted with scikit-learn {sklearn.__version__}",
        **{k: entry[k] for k in ("derivative_type", "embedding_type") if k in entry},
    })
    gap = parity_gap(model, load_classifier(out, name, cid))  # what the server will read
    if gap > TOLERANCE:
        for suffix in (".npz", ".json"):
            (out / f"{name}{suffix}").unlink(missing_ok=True)
        raise ConversionError(f"{path.name}: converted probabilities differ from predict_proba by {gap:.2e}")
    return {"model": name, "embedding_model": spec.store_tag, "converted_from": path.name, "max_difference": gap}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from gateway.analyze.classifiers import update_index

    print(WARNING, file=sys.stderr)
    if not args.i_trust_these_files:
        print("error: refusing to unpickle anything without --i-trust-these-files", file=sys.stderr)
        return 2
    if not args.source.is_dir():
        print(f"error: {args.source} is not a folder", file=sys.stderr)
        return 2
    if args.out.resolve() == args.source.resolve():
        print("error: --out must be another folder than the source (their best_models.json differ)", file=sys.stderr)
        return 2
    try:
        todo = collections(args.source)
    except (ConversionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    converted, failed = {}, {}
    for cid, entry in tqdm(todo.items(), desc="converting", unit="collection"):
        try:
            converted[cid] = convert(args.source, args.out, cid, entry, args.model)
        except ConversionError as exc:
            failed[cid] = str(exc)
    if converted:
        update_index(args.out, converted)
    print(f"done: {len(converted)} collection(s) converted into {args.out}", file=sys.stderr)
    for cid, why in failed.items():
        print(f"error: collection {cid}: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
