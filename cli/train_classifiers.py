"""Train one binary classifier per collection on CLIP embeddings, for the `classify` operation.

    image-embed train-classifiers --data training/                  # .npz embeddings
    image-embed train-classifiers --data training/ --server http://127.0.0.1:3000   # image folders
    image-embed train-classifiers --data training/ --collections 12 14 --keep 5

Training data, one source per collection in --data (the collection id is the name):

  <id>.npz        arrays `embeddings` (n, d) and `labels` (n,) of 0/1, optionally a string
                  `embedding_model` (the server's CLIP store tag; default: --embedding-model)
  <id>/positive/  images in the collection, and <id>/negative/ images not in it; they are
                  embedded through the running server's /encode_images (--server), whose CLIP
                  store tag (GET /health) becomes the classifier's embedding_model

For each collection: a stratified held-out split (--test-size, seeded); a LogisticRegression
with class_weight="balanced" (imbalanced data) trained on the rest; saved as a new version
`collection_<id>_<UTC timestamp>` (plain arrays `.npz` + metadata `.json`, never pickle);
then a bake-off: every stored version of that collection (same embedding model) is scored on
the current held-out split by MACRO PRECISION (precision of "in" and of "not in", averaged:
a classifier that calls everything "in" scores badly), the best --keep versions are kept (ties:
the newer), the others deleted, and best_models.json points the server at the winner. The
server re-reads best_models.json when it changes: no restart needed.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cli.arguments import settings, tool_parser


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
POSITIVE, NEGATIVE = ("positive", "1"), ("negative", "0")
COLLECTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
ENCODE_CHUNK = 32
METRIC = "macro_precision"


class TrainingError(Exception):
    """This collection cannot be trained; the message says why."""


@dataclass
class Dataset:
    collection_id: str
    embeddings: np.ndarray  # (n, d) float32
    labels: np.ndarray  # (n,) int 0/1
    embedding_model: str
    source: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = tool_parser("train-classifiers", __doc__)
    p.add_argument("--data", type=Path, required=True, help="folder of <id>.npz files and/or <id>/positive|negative/ image folders")
    p.add_argument("--out", type=Path, default=settings().classifiers_dir,
                   help="classifier directory the server reads (default: $IMAGE_EMBED_CLASSIFIERS_DIR or trained_classifiers)")
    p.add_argument("--server", help="server URL for embedding image folders (e.g. http://127.0.0.1:3000)")
    p.add_argument("--embedding-model", help="embedding model of .npz files that do not name one "
                   "(default: the CLIP store tag of $IMAGE_EMBED_PROFILE's profile)")
    p.add_argument("--collections", nargs="+", metavar="ID", help="train only these collections")
    p.add_argument("--keep", type=int, default=10, help="versions kept per collection (default: 10)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out fraction (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    args = p.parse_args(argv)
    if args.keep < 1 or not 0 < args.test_size < 1:
        p.error("--keep must be >= 1 and --test-size between 0 and 1")
    return args


def default_embedding_model() -> str:
    from models import get_spec

    return get_spec("clip").store_tag


# --- loading training data ----------------------------------------------------------------


def find_sources(data: Path, only: list[str] | None) -> dict[str, Path]:
    if not data.is_dir():
        raise TrainingError(f"--data {data} is not a folder")
    sources: dict[str, Path] = {}
    for path in sorted(data.iterdir()):
        cid = path.stem if path.suffix == ".npz" else path.name if path.is_dir() else None
        if cid is None or not COLLECTION_ID.match(cid):
            continue
        if cid in sources:
            raise TrainingError(f"collection {cid} has two sources: {sources[cid].name} and {path.name}")
        sources[cid] = path
    if only:
        missing = sorted(set(only) - set(sources))
        if missing:
            raise TrainingError(f"no training data for collection(s) {', '.join(missing)} in {data}")
        sources = {cid: sources[cid] for cid in only}
    if not sources:
        raise TrainingError(f"no <id>.npz file or <id>/ folder in {data}")
    return sources


def load_npz(cid: str, path: Path, fallback_model: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("embeddings", "labels") if k not in f.files]
            if missing:
                raise TrainingError(f"{path.name} lacks the array(s) {', '.join(missing)}; it needs `embeddings` and `labels`")
            embeddings = np.asarray(f["embeddings"], dtype=np.float32)
            labels = np.asarray(f["labels"])
            model = str(f["embedding_model"]) if "embedding_model" in f.files else fallback_model
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{path.name} is not a readable .npz of plain arrays: {exc}") from None
    return Dataset(cid, embeddings, labels, model, str(path))


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def label_folder(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_dir()), None)


def load_folder(cid: str, folder: Path, server: str | None) -> Dataset:
    import httpx
    from tqdm import tqdm

    pos, neg = label_folder(folder, POSITIVE), label_folder(folder, NEGATIVE)
    if pos is None or neg is None:
        raise TrainingError(f"{folder} needs a positive/ and a negative/ subfolder of images")
    if not server:
        raise TrainingError(f"{folder} holds images: pass --server URL to embed them through the running server")
    files = [(p, 1) for p in images_in(pos)] + [(p, 0) for p in images_in(neg)]
    vectors, labels, failed = [], [], []
    with httpx.Client(base_url=server, timeout=300) as http:
        try:
            model = http.get("/health").json()["models"]["clip"]["store_tag"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise TrainingError(f"cannot ask {server}/health for its CLIP model: {exc}") from None
        for start in tqdm(range(0, len(files), ENCODE_CHUNK), desc=f"embedding {cid}", unit="chunk", leave=False):
            chunk = files[start : start + ENCODE_CHUNK]
            uploads = [("images", (p.name, p.read_bytes(), "application/octet-stream")) for p, _ in chunk]
            resp = http.post("/encode_images", files=uploads)
            if resp.status_code != 200:
                raise TrainingError(f"{server}/encode_images answered {resp.status_code}: {resp.text[:300]}")
            for (path, label), item in zip(chunk, resp.json()["results"]):
                if item["error"]:
                    failed.append(f"{path}: {item['error']['detail']}")
                else:
                    vectors.append(item["embedding"])
                    labels.append(label)
    for line in failed:
        print(f"  warning: skipped {line}", file=sys.stderr)
    if not vectors:
        raise TrainingError(f"no image in {folder} could be embedded")
    return Dataset(cid, np.asarray(vectors, dtype=np.float32), np.asarray(labels), model, str(folder))


def check(ds: Dataset, test_size: float) -> None:
    x, y = ds.embeddings, ds.labels
    if x.ndim != 2 or len(x) != len(y):
        raise TrainingError(f"embeddings must be (n, d) with one label each; got {x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise TrainingError("embeddings contain NaN or infinity")
    if not np.isin(y, (0, 1)).all():
        raise TrainingError(f"labels must be 0 or 1; got {sorted(set(np.unique(y).tolist()))[:5]}")
    counts = np.bincount(y.astype(int), minlength=2)
    need = max(2, int(np.ceil(1 / min(test_size, 1 - test_size))))
    if counts.min() < need:
        raise TrainingError(
            f"{counts[1]} positive and {counts[0]} negative examples: each class needs at least {need} "
            f"for a stratified {test_size:.0%} held-out split"
        )


# --- training, bake-off, pruning, index ---------------------------------------------------


def timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")


def macro_precision(clf, x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import precision_score

    predicted = np.array([clf.predict(v)["is_in_collection"] for v in x], dtype=int)
    return float(precision_score(y, predicted, average="macro", zero_division=0))


def versions(out: Path, cid: str) -> list[str]:
    return sorted(p.stem for p in out.glob(f"collection_{cid}_*.json") if (out / f"{p.stem}.npz").exists())


def train_one(ds: Dataset, args: argparse.Namespace) -> dict:
    import sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from gateway.analyze.classifiers import ClassifierError, load_classifier, save_classifier

    check(ds, args.test_size)
    y = ds.labels.astype(int)
    x_train, x_test, y_train, y_test = train_test_split(
        ds.embeddings, y, test_size=args.test_size, stratify=y, random_state=args.seed
    )
    model = LogisticRegression(class_weight="balanced", max_iter=5000).fit(x_train, y_train)
    name = f"collection_{ds.collection_id}_{timestamp()}"
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    save_classifier(args.out, name, model.coef_[0], float(model.intercept_[0]), {
        "collection_id": ds.collection_id,
        "created": created,
        "embedding_model": ds.embedding_model,
        "metric": METRIC,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "positives": int(y.sum()),
        "class_weight": "balanced",
        "trainer": f"scikit-learn {sklearn.__version__} LogisticRegression",
        "source": ds.source,
    })
    scored = []
    for version in versions(args.out, ds.collection_id):
        try:
            clf = load_classifier(args.out, version, ds.collection_id)
        except ClassifierError as exc:
            print(f"  warning: {exc}; left alone", file=sys.stderr)
            continue
        if clf.embedding_model != ds.embedding_model or clf.coef.shape[0] != x_test.shape[1]:
            continue  # another embedding space: cannot compete on these vectors
        scored.append((macro_precision(clf, x_test, y_test), version, clf))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)  # best score; ties: the newer name
    for _, version, _ in scored[args.keep :]:
        for suffix in (".npz", ".json"):
            (args.out / f"{version}{suffix}").unlink(missing_ok=True)
    score, best, clf = scored[0]
    return {
        "model": best,
        "metric": METRIC,
        "score": score,
        "embedding_model": ds.embedding_model,
        "created": clf.metadata.get("created"),
        "evaluated": created,
        "new_version": name,
        "new_version_score": next(s for s, v, _ in scored if v == name),
        "kept": [v for _, v, _ in scored[: args.keep]],
    }


def write_index(out: Path, entries: dict[str, dict]) -> None:
    from gateway.analyze.classifiers import update_index

    skip = ("new_version", "new_version_score", "kept")
    update_index(out, {cid: {k: v for k, v in entry.items() if k not in skip} for cid, entry in entries.items()})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    try:
        sources = find_sources(args.data, args.collections)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    fallback = args.embedding_model or default_embedding_model()
    trained: dict[str, dict] = {}
    failed: dict[str, str] = {}
    bar = tqdm(sources.items(), desc="training", unit="collection")
    for cid, path in bar:
        bar.set_postfix_str(cid)
        try:
            ds = load_npz(cid, path, fallback) if path.suffix == ".npz" else load_folder(cid, path, args.server)
            trained[cid] = train_one(ds, args)
        except TrainingError as exc:
            failed[cid] = str(exc)
            continue
        write_index(args.out, {cid: trained[cid]})  # after each collection: progress survives a crash
        r = trained[cid]
        tqdm.write(f"  collection {cid}: new {r['new_version']} {METRIC}={r['new_version_score']:.3f}; "
                   f"best {r['model']} ({r['score']:.3f}); {len(r['kept'])} version(s) kept")
    print(f"done: {len(trained)} collection(s) trained into {args.out}")
    for cid, why in failed.items():
        print(f"error: collection {cid}: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
