"""The ONNX Runtime engine of the embedding models: export at import, run in the runner.

Which engine runs a model (`select_engine`): IMAGE_EMBED_ENGINE=onnx|torch, `auto` (the
default) meaning ONNX Runtime on CPU and torch on CUDA; only families that declare graphs
(models/families.py `Family.graphs`: CLIP's image and text towers, DINOv2, DINOv3, InternViT)
run on ONNX Runtime, the detectors and the captioner always on torch (docs/models.md says why).
On CPU, IMAGE_EMBED_CPU_PRECISION=int8 picks the dynamically quantized graphs.

Export (`export_graphs`, called by models/store.py when a model is imported): the family
module's `graph_modules(model)` gives one torch module per graph whose forward returns the
final embedding from the runner's own input (the uint8 batch, or token ids), preprocessing and
L2 normalization included, so a graph returns exactly what the torch model's method returns.
Each is exported with the TorchScript exporter (`torch.onnx.export(..., dynamo=False)`, opset
OPSET, dynamic batch dimension) into `onnx/<graph>.fp32.onnx` of the model's ONNX entry in the
model store (`spec.onnx_store_tag`: the graphs and the family's `stored_files`, no weights), and
quantized beside it (`onnx/<graph>.int8.onnx`: onnxruntime's `quantize_dynamic`, 8-bit weights
of every weight MatMul, per output channel, activations quantized per batch at run time). Nothing is exported at serve time.

Run (`OnnxModel`): one InferenceSession per graph with the runner's threads (intra-op = the
threads torch uses in this process, inter-op 1), the same methods as the torch model class.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from config.sections import ModelSettings
from config.settings import load_settings

from .device import CPU, DeviceChoice, DeviceUnavailableError
from .families import Graph, family_module, family_of
from .specs import ModelSpec

if TYPE_CHECKING:
    import torch

GRAPHS_DIR = "onnx"
OPSET = 17
PRECISIONS = ("fp32", "int8")
EXPORTER = f"torch.onnx.export, TorchScript exporter (dynamo=False), opset {OPSET}"
INPUT, OUTPUT = "input", "embedding"
QUANTIZED_OPS = ["MatMul"]  # the transformer's linear layers; the patch convolution stays fp32


@dataclass(frozen=True)
class EngineChoice:
    engine: str  # "onnx" | "torch"
    precision: str  # onnx: "fp32" | "int8"; torch: the device's dtype ("float32" | "float16")


def select_engine(
    spec: ModelSpec, device: DeviceChoice, settings: ModelSettings | None = None, engine: str | None = None
) -> EngineChoice:
    """The engine and precision `spec` runs with on `device` (module docstring); `engine`
    (the Bento's `--arg engine=`) overrides IMAGE_EMBED_ENGINE."""
    settings = settings or load_settings()
    engine = engine or settings.engine
    if engine == "auto":
        engine = "onnx" if device.kind == "cpu" else "torch"
    if engine == "torch" or not family_of(spec).graphs:
        return EngineChoice("torch", device.dtype)
    return EngineChoice("onnx", settings.cpu_precision if device.kind == "cpu" else "fp32")


def graph_path(model_dir: Path, name: str, precision: str) -> Path:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    return Path(model_dir) / GRAPHS_DIR / f"{name}.{precision}.onnx"


def missing_graphs(spec: ModelSpec, model_dir: Path) -> list[str]:
    """The files ONNX Runtime needs for `spec` not in `model_dir` (its ONNX entry): its family's
    graphs and the files stored beside them (CLIP's text tokenizer and logit scale). Relative
    paths; [] when complete."""
    family = family_of(spec)
    if not family.graphs:
        return []
    paths = [graph_path(model_dir, g.name, p) for g in family.graphs for p in PRECISIONS]
    paths += [Path(model_dir) / name for name in family.stored_files]
    return [str(p.relative_to(model_dir)) for p in paths if not p.is_file()]


def torch_free_models(profile: str | None = None) -> list[str]:
    """The model keys whose family ONNX Runtime runs alone (every API method has a graph)."""
    from .registry import list_models

    return [spec.key for spec in list_models(profile) if not family_of(spec).methods_without_graph]


class EngineUnavailableError(RuntimeError):
    """A model cannot run without torch (`--arg engine=onnx`, the lean image); raised at build
    and at start, never per request."""


def torch_free_gaps(spec: ModelSpec, model_dir: Path | None = None) -> list[str]:
    """Why `spec` cannot be served by ONNX Runtime alone, without torch ([] when it can): model
    methods without a graph, or a text tokenizer stored in `model_dir` (its ONNX entry) that
    only open_clip (torch) can run."""
    from .clip_tokenizer import TORCH_FREE_KINDS, TOKENIZER_FILE, stored_kind

    family = family_of(spec)
    gaps = [f"{method} has no ONNX graph" for method in family.methods_without_graph]
    if model_dir is not None and TOKENIZER_FILE in family.stored_files:
        kind = stored_kind(model_dir)
        if kind is not None and kind not in TORCH_FREE_KINDS:
            gaps.append(f"its text tokenizer ({kind}) needs open_clip and torch")
    return gaps


def embedding_module(net: "torch.nn.Module", features: Callable[[Any, Any], Any], spec: ModelSpec | None = None):
    """A torch module for export: forward(input) = L2-normalized float32 `features(net, x)`.

    With `spec`, the input is the runner's uint8 batch (n, h, w, 3), normalized inside the graph
    (models/preprocess.py `normalize_pixels`, the torch engine's own steps); without, the
    input goes to `features` as it is (token ids)."""
    import torch
    import torch.nn.functional as F

    from .preprocess import normalize_pixels

    class Embedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net  # registered, so its weights become the graph's initializers

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            if spec is not None:
                x = normalize_pixels(x, spec)
            return F.normalize(features(self.net, x).float(), dim=-1)

    return Embedding().eval()


def _example(graph: Graph, spec: ModelSpec, model_dir: Path) -> "torch.Tensor":
    """A batch of two inputs for tracing (two, so nothing specializes on a batch of one); token
    ids from the tokenizer stored in `model_dir`."""
    import torch

    if graph.inputs == "tokens":
        tokenize = family_module(spec).tokenizer(model_dir)
        return torch.from_numpy(tokenize(["a photo of a cat", "two dogs on a beach"]))
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.integers(0, 256, (2, spec.input_size, spec.input_size, 3), dtype=np.uint8))


def export_graphs(spec: ModelSpec, model_dir: Path, target: Path) -> list[Path]:
    """Export `spec`'s graphs (fp32 and int8) from the weights in `model_dir` (its weights
    entry, with the family's stored files) into `target` (its ONNX entry)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    family = family_of(spec)
    if not family.graphs:
        return []
    module = family_module(spec)
    model = getattr(module, family.model_class)(spec, model_dir, CPU)
    modules = module.graph_modules(model)
    (Path(target) / GRAPHS_DIR).mkdir(exist_ok=True)
    written = []
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.MultiheadAttention's fused inference kernel (open_clip) has no ONNX form; the
    # unfused path computes the same attention.
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        for graph in family.graphs:
            fp32, int8 = graph_path(target, graph.name, "fp32"), graph_path(target, graph.name, "int8")
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
                torch.onnx.export(
                    modules[graph.name],
                    (_example(graph, spec, model_dir),),
                    str(fp32),
                    dynamo=False,
                    opset_version=OPSET,
                    input_names=[INPUT],
                    output_names=[OUTPUT],
                    dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                )
            # Past protobuf's 2 GB the exporter writes the weights beside the graph, and so must
            # the quantizer (DINOv2 ViT-g/14: 4.4 GB in fp32).
            large = sum(p.numel() * p.element_size() for p in modules[graph.name].parameters()) > 1_800_000_000
            quantize_dynamic(fp32, int8, use_external_data_format=large, **_quantize_options(QuantType))
            written += [fp32, int8]
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return written


def _quantize_options(QuantType) -> dict[str, Any]:
    """quantize_dynamic's options: uint8 weights per output channel, of the weight MatMuls only
    (MatMulConstBOnly: attention's activation x activation products stay fp32). int8 (s8)
    weights lose accuracy on CPUs without VNNI (AVX2's u8 x s8 products saturate at int16):
    cosine to fp32 0.9936 against 0.9998 with u8 weights on ViT-B/32 (random weights, AVX2)."""
    return {
        "op_types_to_quantize": QUANTIZED_OPS,
        "weight_type": QuantType.QUInt8,
        "per_channel": True,
        "extra_options": {"MatMulConstBOnly": True},
    }


def runner_threads() -> int:
    """The threads torch would use in this process, found without torch (the lean image has
    none), so both engines get the same share of the machine: OMP_NUM_THREADS (BentoML sets it
    per worker from its CPU resources) or MKL_NUM_THREADS, else the physical cores."""
    import psutil

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def make_session(path: Path, device: DeviceChoice, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle threads sleep instead of spinning: between batches the cores go to the gateway.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if device.kind == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise DeviceUnavailableError(
                "IMAGE_EMBED_ENGINE=onnx on CUDA needs onnxruntime-gpu (this onnxruntime has no "
                "CUDAExecutionProvider); unset IMAGE_EMBED_ENGINE to run torch on the GPU."
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


class OnnxModel:
    """A model run by ONNX Runtime, with the same methods as its family's torch class
    (`encode_images`, `encode_texts`); inputs and outputs as there."""

    engine = "onnx"

    def __init__(self, spec: ModelSpec, model_dir: Path, device: DeviceChoice, precision: str) -> None:
        self.spec = spec
        self.device = device
        self.model_dir = Path(model_dir)  # its ONNX entry
        self.precision = precision
        self.threads = runner_threads()
        self.sessions = {}
        for graph in family_of(spec).graphs:
            session = make_session(graph_path(model_dir, graph.name, precision), device, self.threads)
            self.sessions[graph.method] = session
            if graph.inputs == "tokens":
                self._tokenize = family_module(spec).tokenizer(model_dir)
                setattr(self, graph.method, self._texts_runner(session))
            else:
                setattr(self, graph.method, self._images_runner(session))

    def _images_runner(self, session) -> Callable[[np.ndarray], np.ndarray]:
        size = self.spec.input_size

        def run(batch: np.ndarray) -> np.ndarray:
            if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != (size, size, 3):
                raise ValueError(f"expected a uint8 (n, {size}, {size}, 3) batch, got {batch.dtype} {batch.shape}")
            return _float32(session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch)})[0])

        return run

    def _texts_runner(self, session) -> Callable[[Sequence[str]], np.ndarray]:
        def run(texts: Sequence[str]) -> np.ndarray:
            return _float32(session.run([OUTPUT], {INPUT: self._tokenize(list(texts))})[0])

        return run


def _float32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32, copy=False)


def engine_fields(model: Any, device: DeviceChoice) -> dict[str, Any]:
    """What a runner's `info` says about the engine of a loaded model."""
    if getattr(model, "engine", "torch") == "onnx":
        return {"engine": "onnx", "precision": model.precision, "threads": model.threads}
    return {"engine": "torch", "precision": device.dtype}
