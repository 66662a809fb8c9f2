"""The stored, torch-free CLIP tokenizer gives open_clip's own token ids (models/clip_tokenizer.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import get_spec
from models.clip import CONFIG_FILE, _preprocess_cfg
from models.clip_tokenizer import TOKENIZER_FILE, ClipBpeTokenizer, export_tokenizer, load_tokenizer, stored_kind

TRICKY = [
    "",
    "   ",
    "a photo of a cat",
    "A PHOTO OF A CAT!!!",
    "don't stop-believin' it's 12345 o'clock",
    "Ça, c'est très “joli” — naïve café ﬁne",  # accents, curly quotes, a dash, a ligature
    "東京タワーの夜景 🗼✨ 한국어 العربية עברית",  # CJK, emoji, Hangul, right-to-left scripts
    "e\u0301\u0301 zero\u200bwidth\u200djoiner \ufeff",  # combining marks, zero-width characters
    "Ã©tÃ© mojibake and &amp;lt;b&amp;gt; HTML entities &quot;twice&quot; a < b &amp;amp;amp;quot;thrice",
    "tabs\tand\nnewlines\r\n\x00control\x07chars",
    "<start_of_text> literal <end_of_text> special tokens <START_OF_TEXT>",
    "word " * 200,  # past the context: truncated, ending with the end token
    "supercalifragilisticexpialidocious" * 20,
    "x" * 5000,
    "\ud83d lone surrogate",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters ½ ² Ⅻ",
]


def _model_dir(tmp_path, **text_cfg):
    """An open_clip local-dir folder (config only: tokenizing needs no weights) of the tiny CLIP."""
    spec = get_spec("clip", "tiny")
    cfg = json.loads(json.dumps(spec.arch_config))
    cfg["text_cfg"].update(text_cfg)
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": _preprocess_cfg(spec)}))
    return tmp_path


def _open_clip_tokenizer(model_dir):
    import open_clip

    return open_clip.get_tokenizer(f"local-dir:{model_dir}")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(open_clip's tokenizer, the stored port) of the tiny CLIP's folder."""
    model_dir = _model_dir(tmp_path_factory.mktemp("clip"))
    reference = _open_clip_tokenizer(model_dir)
    export_tokenizer(reference, model_dir)
    return reference, load_tokenizer(model_dir)


def _same(reference, port, texts):
    expected = reference(list(texts)).numpy()
    got = port(list(texts))
    assert got.dtype == np.int64 and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_tricky_texts_give_open_clips_ids(pair):
    reference, port = pair
    assert isinstance(port, ClipBpeTokenizer)
    _same(reference, port, TRICKY)
    for text in TRICKY:  # one at a time too: no state carried between texts
        _same(reference, port, [text])


def test_long_text_is_cut_to_the_context_and_ends_with_the_end_token(pair):
    _, port = pair
    ids = port(["word " * 200])[0]
    assert ids.shape == (77,) and ids[0] == port.sot and ids[-1] == port.eot and (ids != 0).all()
    empty = port([""])[0]
    assert list(empty[:2]) == [port.sot, port.eot] and not empty[2:].any()


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(max_size=120), min_size=1, max_size=4))
def test_any_text_gives_open_clips_ids(pair, texts):
    reference, port = pair
    try:
        expected = reference(texts).numpy()
    except UnicodeEncodeError:  # a lone surrogate ftfy leaves: open_clip cannot encode it either
        with pytest.raises(UnicodeEncodeError):
            port(texts)
        return
    np.testing.assert_array_equal(port(texts), expected)


@pytest.mark.parametrize("clean", ["whitespace", "canonicalize"])
def test_other_context_lengths_and_clean_modes_are_stored_with_the_model(tmp_path, clean):
    model_dir = _model_dir(tmp_path, context_length=16, tokenizer_kwargs={"clean": clean})
    reference = _open_clip_tokenizer(model_dir)
    export_tokenizer(reference, model_dir)
    port = load_tokenizer(model_dir)
    assert port.context_length == 16 and port.clean == clean
    _same(reference, port, TRICKY)


def test_a_tokenizer_without_a_port_is_recorded_as_needing_open_clip(tmp_path):
    class HFTokenizer:  # stands for open_clip's Hugging Face tokenizers (SigLIP, multilingual)
        pass

    assert stored_kind(tmp_path) is None  # an entry imported before the export
    export_tokenizer(HFTokenizer(), tmp_path)
    assert (tmp_path / TOKENIZER_FILE).is_file()
    assert stored_kind(tmp_path) == "open_clip"


@pytest.mark.parametrize("arch", ["ViT-L-14", "RN50x16", "ViT-B-16-quickgelu"])
def test_other_clip_architectures_store_their_own_tokenizer(tmp_path, arch):
    """Any open_clip CLIP with OpenAI's tokenizer (the extra CLIPs served by name among them)."""
    import open_clip

    reference = open_clip.get_tokenizer(arch)
    export_tokenizer(reference, tmp_path)
    assert stored_kind(tmp_path) == "clip_bpe"
    _same(reference, load_tokenizer(tmp_path), TRICKY)
