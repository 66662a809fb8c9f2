"""CLIP's text tokenizer without torch, stored with the model.

open_clip's tokenizers build torch tensors, and importing open_clip imports torch, so the
ONNX Runtime engine (and the lean image, which has no torch) cannot use them. Instead the
import writes what the tokenizer needs into the model-store entry (`export_tokenizer`, called
by models/clip.py `materialize`), and `load_tokenizer` tokenizes from that file alone, with
`regex` and `ftfy` (what open_clip itself uses) and numpy:

    TOKENIZER_FILE (gzip JSON)  format, kind, context_length, clean, pattern, vocab, merges

`kind`:
- "clip_bpe": open_clip's SimpleTokenizer (OpenAI's byte-level BPE, used by the OpenAI CLIPs
  and most open_clip models), exported from the tokenizer object open_clip builds for this very
  model (`get_tokenizer("local-dir:...")`): its vocabulary in id order, its merges in rank
  order, its token pattern, clean mode and context length. Tokenizing here gives exactly its
  ids (tests/models/test_clip_tokenizer.py checks long, unicode and empty texts).
- "open_clip": any other tokenizer (a Hugging Face one: SigLIP, multilingual CLIPs). It is
  recorded, not ported: those models tokenize with open_clip, so they need torch, and the lean
  image refuses them (`TORCH_FREE_KINDS`).
"""

from __future__ import annotations

import gzip
import html
import json
import string
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

TOKENIZER_FILE = "text_tokenizer.json.gz"
FORMAT = "image-embed-text-tokenizer/1"
TORCH_FREE_KINDS = ("clip_bpe",)
BPE_CACHE_WORDS = 65_536  # words whose merges are remembered (open_clip's cache is unbounded)
_CLEAN_MODES = ("lower", "whitespace", "canonicalize")


def export_tokenizer(tokenizer: Any, model_dir: Path) -> Path:
    """Write what `tokenizer` (the one open_clip builds for this model) needs into `model_dir`."""
    from open_clip import tokenizer as oc

    if isinstance(tokenizer, oc.SimpleTokenizer):
        if tokenizer.reduction_fn is not None:
            raise ValueError("a CLIP tokenizer with a reduction mask (random token dropping) has no stored form")
        clean = {oc._clean_lower: "lower", oc._clean_whitespace: "whitespace", oc._clean_canonicalize: "canonicalize"}
        data = {
            "kind": "clip_bpe",
            "context_length": tokenizer.context_length,
            "clean": clean[tokenizer.clean_fn],
            "pattern": tokenizer.pat.pattern,
            "ignore_case": bool(tokenizer.pat.flags & oc.re.IGNORECASE),
            "sot": tokenizer.sot_token_id,
            "eot": tokenizer.eot_token_id,
            "special_tokens": [tokenizer.decoder[i] for i in tokenizer.all_special_ids],
            "vocab": [tokenizer.decoder[i] for i in range(len(tokenizer.decoder))],
            "merges": [list(pair) for pair, _ in sorted(tokenizer.bpe_ranks.items(), key=lambda item: item[1])],
        }
    else:
        data = {"kind": "open_clip", "class": type(tokenizer).__name__}
    path = Path(model_dir) / TOKENIZER_FILE
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump({"format": FORMAT, **data}, f, ensure_ascii=False)
    return path


def stored_kind(model_dir: Path) -> str | None:
    """The kind of the stored tokenizer, or None when the entry has none (an older import)."""
    return _read(model_dir)["kind"] if (Path(model_dir) / TOKENIZER_FILE).is_file() else None


def _read(model_dir: Path) -> dict[str, Any]:
    with gzip.open(Path(model_dir) / TOKENIZER_FILE, "rt", encoding="utf-8") as f:
        data = json.load(f)
    if data.get("format") != FORMAT:
        raise ValueError(f"{TOKENIZER_FILE} in {model_dir} has format {data.get('format')!r}, expected {FORMAT!r}")
    return data


def load_tokenizer(model_dir: Path):
    """texts -> int64 token ids (n, context_length), from the stored file: the port for
    "clip_bpe", open_clip's own tokenizer (torch) for any other kind."""
    data = _read(model_dir)
    if data["kind"] == "clip_bpe":
        return ClipBpeTokenizer(data)
    import open_clip

    tokenize = open_clip.get_tokenizer(f"local-dir:{model_dir}")
    return lambda texts: tokenize(list(texts)).numpy().astype(np.int64, copy=False)


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """OpenAI's reversible map of the 256 bytes onto printable characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def _clean(text: str, mode: str) -> str:
    """open_clip's basic_clean (ftfy, HTML entities twice), then its clean mode."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    if mode == "canonicalize":
        text = text.replace("_", " ").translate(str.maketrans("", "", string.punctuation)).lower()
        return " ".join(text.split()).strip()
    text = " ".join(text.split()).strip()
    return text.lower() if mode == "lower" else text


class ClipBpeTokenizer:
    """open_clip's SimpleTokenizer from its stored vocabulary and merges (no torch)."""

    def __init__(self, data: dict[str, Any]) -> None:
        import regex

        if data["clean"] not in _CLEAN_MODES:
            raise ValueError(f"unknown clean mode {data['clean']!r}")
        self.context_length = int(data["context_length"])
        self.clean = data["clean"]
        self.sot, self.eot = int(data["sot"]), int(data["eot"])
        self.encoder = {token: i for i, token in enumerate(data["vocab"])}
        self.ranks = {tuple(pair): rank for rank, pair in enumerate(data["merges"])}
        self.special = set(data["special_tokens"])
        self.pattern = regex.compile(data["pattern"], regex.IGNORECASE if data["ignore_case"] else 0)
        self.byte_map = _byte_to_unicode()
        self._bpe = lru_cache(maxsize=BPE_CACHE_WORDS)(self._merge)

    def _merge(self, token: str) -> tuple[str, ...]:
        """The BPE symbols of one pre-token (its bytes mapped to characters)."""
        if token in self.special:
            return (token,)
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    def encode(self, text: str, limit: int | None = None) -> list[int]:
        """The ids of `text`; with `limit`, at least its first `limit` ids (words are merged
        independently of each other, so the words past them cannot change them)."""
        ids: list[int] = []
        for match in self.pattern.finditer(_clean(text, self.clean)):
            mapped = "".join(self.byte_map[b] for b in match.group().encode("utf-8"))
            ids.extend(self.encoder[symbol] for symbol in self._bpe(mapped))
            if limit is not None and len(ids) >= limit:
                break
        return ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text, limit=self.context_length), self.eot]
            if len(ids) > self.context_length:  # truncated, ending with the end token
                ids = ids[: self.context_length]
                ids[-1] = self.eot
            out[row, : len(ids)] = ids
        return out
