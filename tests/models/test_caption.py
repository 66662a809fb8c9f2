"""BLIP captions: parity with transformers' own pipeline on the same weights, per-request
max_length in mixed batches, an offline tokenizer for the tiny profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import get_spec
from models.caption import BOS, SPECIAL, Captioner, materialize, synthetic_vocab, tiny_vocab
from models.device import CPU
from models.hub import WeightsDownloadError
from models.preprocess import prepare_images
from models.store import model_dir
from tests.conftest import noise_image, photo


@pytest.fixture(scope="module")
def folder(tiny_models) -> Path:
    return model_dir(get_spec("caption", "tiny"))


@pytest.fixture(scope="module")
def captioner(folder) -> Captioner:
    return Captioner(get_spec("caption", "tiny"), folder, CPU)


@pytest.fixture(scope="module")
def reference(folder):
    """transformers' own pipeline, loaded from the same store folder."""
    from transformers import BlipForConditionalGeneration, BlipProcessor

    return BlipProcessor.from_pretrained(folder), BlipForConditionalGeneration.from_pretrained(folder).eval()


IMAGES = [photo(), noise_image(640, 360, seed=7), photo().crop((150, 40, 300, 200))]


def test_the_tiny_tokenizer_is_built_offline_from_the_catalogs_words(folder):
    from transformers import AutoTokenizer

    spec = get_spec("caption", "tiny")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    vocab = tiny_vocab(spec.arch_config["vocab_words"])
    assert len(tokenizer) == len(vocab)
    assert tokenizer.bos_token == BOS and tokenizer.bos_token_id == vocab[BOS]
    assert tokenizer.convert_tokens_to_ids("astronaut") == vocab["astronaut"]
    assert tokenizer.decode(tokenizer.convert_tokens_to_ids(["a", "photo", "of", "a", "dog"])) == "a photo of a dog"


def test_pixels_equal_the_reference_processor(reference):
    """Our gateway resize (PIL) equals transformers' PIL backend exactly and its default
    torchvision backend within a little interpolation noise."""
    from transformers import BlipImageProcessorPil

    processor, _ = reference
    spec = get_spec("caption", "tiny")
    ours = torch.from_numpy(prepare_images(IMAGES, spec)).permute(0, 3, 1, 2).float().div(255)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    ours = (ours - mean) / std
    pil_backend = BlipImageProcessorPil(**processor.image_processor.to_dict())
    exact = torch.as_tensor(np.asarray(pil_backend(images=IMAGES, return_tensors="np")["pixel_values"]))
    np.testing.assert_allclose(ours.numpy(), exact.numpy(), atol=1e-5)
    default = processor(images=IMAGES, return_tensors="pt")["pixel_values"]
    one_level = 1 / 255 / min(spec.std)
    assert (ours - default).abs().mean() < 0.5 * one_level
    assert (ours - default).abs().max() < 12 * one_level


@pytest.mark.parametrize("max_length", [5, 20, 50])
def test_tokens_equal_the_reference_generate(captioner, reference, max_length):
    """Same weights and same pixel values -> the same caption tokens as processor + model.generate."""
    processor, model = reference
    batch = prepare_images(IMAGES, captioner.spec)
    ours = captioner.generate(batch, max_length)
    for i in range(len(IMAGES)):
        pixel_values = processor(images=Image.fromarray(batch[i]), return_tensors="pt")["pixel_values"]
        expected = model.generate(pixel_values=pixel_values, max_length=max_length)[0].numpy()
        row = ours[i][: len(expected)]
        np.testing.assert_array_equal(row, expected)
        assert (ours[i][len(expected) :] == processor.tokenizer.pad_token_id).all()
        text = processor.decode(expected, skip_special_tokens=True).strip()
        assert captioner.caption(batch[i : i + 1], [max_length]) == [text]


def test_tiny_captions_depend_on_the_image(captioner):
    """Otherwise the parity tests above would compare constants."""
    captions = captioner.caption(prepare_images(IMAGES, captioner.spec), [30] * len(IMAGES))
    assert len(set(captions)) == len(IMAGES), captions


def test_a_mixed_batch_equals_each_request_alone(captioner):
    batch = prepare_images(IMAGES, captioner.spec)
    lengths = [3, 40, 8]
    together = captioner.caption(batch, lengths)
    alone = [captioner.caption(batch[i : i + 1], [n])[0] for i, n in enumerate(lengths)]
    assert together == alone
    assert len(together[0].split()) <= 2  # 3 tokens: BOS and at most two words


def test_max_length_is_a_prefix(captioner):
    batch = prepare_images([photo()], captioner.spec)
    long = captioner.generate(batch, 30)[0]
    short = captioner.generate(batch, 4)[0]
    np.testing.assert_array_equal(long[: len(short)], short)


def test_caption_checks_its_inputs(captioner):
    assert captioner.caption(np.zeros((0, 384, 384, 3), np.uint8), []) == []
    with pytest.raises(ValueError, match="max_lengths"):
        captioner.caption(np.zeros((2, 384, 384, 3), np.uint8), [5])


def test_synthetic_vocab_has_berts_specials_where_blip_expects_them():
    vocab = synthetic_vocab(30524, 30522)
    assert len(vocab) == 30524 and sorted(vocab.values()) == list(range(30524))
    assert {t: vocab[t] for t in SPECIAL} == SPECIAL and vocab[BOS] == 30522


def test_bench_is_blip_base_sized():
    from transformers import BlipConfig

    spec = get_spec("caption", "bench")
    assert spec.arch_config is None and spec.random_weights
    cfg = BlipConfig()
    assert cfg.vision_config.image_size == spec.input_size == 384
    assert (cfg.vision_config.hidden_size, cfg.text_config.num_hidden_layers) == (768, 12)


def test_default_import_offline_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsDownloadError, match="HF_HUB_OFFLINE"):
        materialize(get_spec("caption", "default"), tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_default_import_path_with_a_stand_in_download(tmp_path, monkeypatch, reference):
    """materialize's pretrained branch, offline: the hub download is stood in for by the tiny
    model; the preprocessing check passes and the folder is written for the runner."""
    import transformers

    import models.caption as caption

    processor, model = reference
    seen = []

    def stand_in(obj):
        return type("StandIn", (), {"from_pretrained": staticmethod(lambda name, **kw: seen.append(name) or obj)})

    monkeypatch.setattr(caption, "ensure_hub_reachable", seen.append)
    monkeypatch.setattr(transformers, "BlipForConditionalGeneration", stand_in(model))
    monkeypatch.setattr(transformers, "BlipProcessor", stand_in(processor))
    spec = get_spec("caption", "default")
    materialize(spec, tmp_path)
    assert seen == [spec.weights_source, spec.pretrained, spec.pretrained]
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "tokenizer_config.json").exists()


def test_a_checkpoint_with_other_preprocessing_is_refused(folder):
    from transformers import BlipProcessor

    from models.caption import _check_preprocess_matches

    processor = BlipProcessor.from_pretrained(folder)
    _check_preprocess_matches(get_spec("caption", "default"), processor)
    processor.image_processor.image_mean = [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="differs from the checkpoint"):
        _check_preprocess_matches(get_spec("caption", "default"), processor)
