"""models/onnx_engine.py: engine choice, graphs in the model store, parity with torch (tiny weights).

Parity here is on the tiny profile's weights (every embedding model); test_onnx_parity_bench.py
repeats it on the bench profile's ViT-B/32 (the real architecture, random weights).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models import get_spec, list_models
from models.device import CPU, DeviceChoice
from models.families import family_of
from models.onnx_engine import (
    PRECISIONS,
    OnnxModel,
    engine_fields,
    graph_path,
    missing_graphs,
    select_engine,
)
from config.sections import ModelSettings
from models.preprocess import prepare_images
from models.store import (
    ModelNotImportedError,
    entries,
    family_module,
    find,
    import_spec,
    load,
    loadable_dir,
    model_dir,
    onnx_dir,
    remove,
)
from tests.models.engine_cases import max_abs_and_min_cosine, neighbours_agreement, parity_images, search_set

CUDA = DeviceChoice(device="cuda", dtype="float16", name="a GPU")
GRAPH_KEYS = [spec.key for spec in list_models("tiny") if family_of(spec).graphs]
TEXTS = ["a photo of an astronaut", "a cat on a sofa", "", "🐱 cat " * 40]


def settings(engine: str = "auto", precision: str = "fp32") -> ModelSettings:
    return ModelSettings(profile="tiny", device="auto", require_gpu=False, engine=engine, cpu_precision=precision)


def torch_model(spec):
    return getattr(family_module(spec), family_of(spec).model_class)(spec, model_dir(spec), CPU)


@pytest.fixture(scope="module")
def engines(tiny_models):
    """key -> (torch model, {precision: OnnxModel}) for every tiny embedding model."""
    out = {}
    for key in GRAPH_KEYS:
        spec = get_spec(key, "tiny")
        out[key] = (torch_model(spec), {p: OnnxModel(spec, onnx_dir(spec), CPU, p) for p in PRECISIONS})
    return out


def test_the_embedding_models_have_graphs_and_the_others_none():
    assert set(GRAPH_KEYS) == {"clip", "dinov2", "dinov2_giant", "dinov3", "internvit"}
    assert [g.name for g in family_of(get_spec("clip", "tiny")).graphs] == ["image", "text"]


@pytest.mark.parametrize(
    ("engine", "device", "precision", "expected"),
    [
        ("auto", CPU, "fp32", ("onnx", "fp32")),
        ("auto", CPU, "int8", ("onnx", "int8")),
        ("auto", CUDA, "int8", ("torch", "float16")),  # auto: torch on CUDA
        ("torch", CPU, "int8", ("torch", "float32")),
        ("onnx", CUDA, "int8", ("onnx", "fp32")),  # int8 is a CPU precision
    ],
)
def test_select_engine(engine, device, precision, expected):
    choice = select_engine(get_spec("clip", "tiny"), device, settings(engine, precision))
    assert (choice.engine, choice.precision) == expected


@pytest.mark.parametrize("key", ["person", "face", "caption"])
def test_detectors_and_captioner_stay_on_torch(key):
    assert select_engine(get_spec(key, "tiny"), CPU, settings("onnx", "int8")).engine == "torch"


def test_import_writes_both_precisions_of_every_graph_into_the_onnx_entry(tiny_models):
    for key in GRAPH_KEYS:
        spec = get_spec(key, "tiny")
        assert entries(spec) == [spec.store_tag, spec.onnx_store_tag] and entries(spec, "onnx") == [spec.onnx_store_tag]
        assert missing_graphs(spec, onnx_dir(spec)) == [], key
        assert not (model_dir(spec) / "onnx").exists()  # the weights entry has none
        assert not list(onnx_dir(spec).rglob("*.safetensors"))  # and the ONNX entry no weights
    person = get_spec("person", "tiny")
    assert entries(person) == entries(person, "torch") == [person.store_tag]
    assert find(person, person.onnx_store_tag) is None


@pytest.mark.parametrize(
    ("env", "engine", "precision"), [({}, "onnx", "fp32"), ({"IMAGE_EMBED_CPU_PRECISION": "int8"}, "onnx", "int8"),
                                     ({"IMAGE_EMBED_ENGINE": "torch"}, "torch", "float32")]
)
def test_load_runs_the_configured_engine(tiny_models, monkeypatch, env, engine, precision):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    model = load(get_spec("clip", "tiny"), CPU)
    fields = engine_fields(model, CPU)
    assert (fields["engine"], fields["precision"]) == (engine, precision)
    assert isinstance(model, OnnxModel) == (engine == "onnx")
    assert model.encode_images(np.zeros((2, 224, 224, 3), np.uint8)).shape == (2, 512)


def test_onnx_sessions_use_the_runners_threads(engines):
    import torch

    model = engines["clip"][1]["fp32"]
    assert model.threads == torch.get_num_threads()
    for session in model.sessions.values():
        assert session.get_session_options().intra_op_num_threads == model.threads


@pytest.mark.parametrize("key", GRAPH_KEYS)
def test_fp32_graph_equals_torch(engines, key):
    """ONNX fp32 against torch on real photographs and random images: the same embedding."""
    spec = get_spec(key, "tiny")
    batch = prepare_images(parity_images(), spec)
    reference, onnx = engines[key][0], engines[key][1]["fp32"]
    diff, cosine = max_abs_and_min_cosine(onnx.encode_images(batch), reference.encode_images(batch))
    assert diff <= 1e-4 and cosine >= 0.99999, (diff, cosine)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_clip_text_graph(engines, precision):
    reference, onnx = engines["clip"][0], engines["clip"][1][precision]
    diff, cosine = max_abs_and_min_cosine(onnx.encode_texts(TEXTS), reference.encode_texts(TEXTS))
    if precision == "fp32":
        assert diff <= 1e-4 and cosine >= 0.99999, (diff, cosine)
    else:
        assert cosine >= TINY_INT8_MIN_COSINE, cosine


# The tiny twins are 32-64 wide with weights drawn up to 10x wider than the checkpoints': each
# output sums few quantized products, so int8 noise averages out less than at real sizes
# (measured minimum 0.9979, dinov2_giant). The 0.999 on every image holds at real size:
# test_onnx_parity_bench.py (ViT-B/32) and the engines benchmark (every bench model) check it.
TINY_INT8_MIN_COSINE = 0.995


@pytest.mark.parametrize("key", GRAPH_KEYS)
def test_int8_graph_is_close_to_fp32_on_every_image(engines, key):
    spec = get_spec(key, "tiny")
    batch = prepare_images(parity_images(), spec)
    fp32, int8 = engines[key][1]["fp32"].encode_images(batch), engines[key][1]["int8"].encode_images(batch)
    _, cosine = max_abs_and_min_cosine(int8, fp32)
    assert cosine >= TINY_INT8_MIN_COSINE, cosine


def test_int8_finds_the_same_neighbours(engines):
    """Top-10 neighbours of each of 48 images among the others, int8 against fp32 (CLIP tiny)."""
    batch = prepare_images(search_set(), get_spec("clip", "tiny"))
    models = engines["clip"][1]
    shared, total = neighbours_agreement(models["int8"].encode_images(batch), models["fp32"].encode_images(batch))
    print(f"tiny clip int8 vs fp32: {shared}/{total} top-10 neighbours agree")
    assert shared >= 0.9 * total, (shared, total)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_graphs_take_any_batch_size(engines, precision):
    onnx = engines["dinov2"][1][precision]
    batch = prepare_images(parity_images()[:5], get_spec("dinov2", "tiny"))
    whole = onnx.encode_images(batch)
    one_by_one = np.concatenate([onnx.encode_images(batch[i : i + 1]) for i in range(len(batch))])
    assert whole.shape == (5, 32) and whole.dtype == np.float32
    # int8 quantizes activations per batch, so a row depends a little on its batch-mates
    assert np.abs(whole - one_by_one).max() < (1e-5 if precision == "fp32" else 0.05)


def test_a_bad_batch_is_refused_with_a_value_error(engines):
    with pytest.raises(ValueError, match="uint8"):
        engines["clip"][1]["fp32"].encode_images(np.zeros((1, 224, 224, 3), np.float32))


def test_an_entry_without_graphs_fails_clearly_and_import_completes_it(tiny_models, monkeypatch):
    """A model-store entry from before the ONNX engine (weights only, no ONNX entry): ONNX
    refuses with the command that fixes it, torch still loads it, and the import exports the
    ONNX entry from the weights in the store."""
    import bentoml

    spec = dataclasses.replace(get_spec("dinov2", "tiny"), seed=41)  # its own store tag
    with bentoml.models.create(spec.store_tag, metadata=spec.to_metadata()) as stored:
        family_module(spec).materialize(spec, stored.path)  # weights only, as imports did before
    try:
        command = "import-models --profile tiny --models dinov2`"
        refusal = f"files of its ONNX engine \\(no entry {spec.onnx_store_tag}\\).*{command}"
        with pytest.raises(ModelNotImportedError, match=refusal):
            load(spec, CPU)
        with pytest.raises(ModelNotImportedError):  # what service.py checks before any runner starts
            loadable_dir(spec, DeviceChoice(device="cpu", dtype="", name=""))
        assert loadable_dir(spec, CUDA) == model_dir(spec)  # torch on CUDA: the weights are enough
        monkeypatch.setenv("IMAGE_EMBED_ENGINE", "torch")
        assert load(spec, CPU).encode_images(np.zeros((1, 224, 224, 3), np.uint8)).shape == (1, 32)
        monkeypatch.delenv("IMAGE_EMBED_ENGINE")
        result = import_spec(spec)
        assert not result.new
        assert result.added == (f"the ONNX entry {spec.onnx_store_tag} (graphs exported from the weights)",)
        assert graph_path(onnx_dir(spec), "image", "int8").is_file()
        assert isinstance(load(spec, CPU), OnnxModel)
        assert not import_spec(spec).created  # complete now: a no-op
    finally:
        remove(spec)
