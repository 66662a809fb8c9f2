"""What each model family offers a runner: its loader module, model class, runner APIs, info.

A spec names its family (`spec.family`); the family says how the weights are written and
loaded (`module`: `materialize(spec, dir)` and `model_class`) and which batchable runner APIs
a loaded model serves. runners/define.py turns this data into BentoML services, so a model
never needs runner code of its own. Nothing here imports torch: the gateway imports it too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .clip_files import SERVING_FILES as CLIP_SERVING_FILES
from .specs import ModelSpec

IO_KINDS = ("images", "texts", "captions")  # how an API's batch looks (runners/io.py)
GRAPH_INPUTS = ("images", "tokens")  # what an ONNX graph takes: uint8 (n, h, w, 3) or int64 token ids


@dataclass(frozen=True, kw_only=True)
class Api:
    """One batchable runner API of a model."""

    name: str  # the runner API's name; "{key}" becomes the spec's key ("encode_{key}" -> "encode_dinov2")
    method: str  # the loaded model's method it calls
    io: str  # one of IO_KINDS
    limits: str  # the entry of spec.batching holding its batch limits
    doc: str  # the API's description (OpenAPI)

    def api_name(self, spec: ModelSpec) -> str:
        return self.name.format(key=spec.key)


@dataclass(frozen=True, kw_only=True)
class Graph:
    """One ONNX graph of a model (models/onnx_engine.py): it replaces the model method `method`.

    The family module's `graph_modules(model)` gives, per graph name, the torch module exported:
    its forward takes the graph's input (`images`: the runner's uint8 batch; `tokens`: the
    ids of the family module's `tokenizer(model_dir)`) and returns the final embedding, exactly
    what `method` of the torch model returns.
    """

    name: str  # the graph's file stem in the model-store entry: "image" -> onnx/image.fp32.onnx
    method: str  # the model method it serves: "encode_images"
    inputs: str = "images"  # one of GRAPH_INPUTS

    def __post_init__(self) -> None:
        if self.inputs not in GRAPH_INPUTS:
            raise ValueError(f"graph {self.name!r} has unknown inputs {self.inputs!r}; use one of {GRAPH_INPUTS}")


def _no_extra(spec: ModelSpec, model: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, kw_only=True)
class Family:
    module: str  # import path of the module with materialize(spec, dir) and the model class
    model_class: str  # its class: Model(spec, model_dir, device)
    apis: tuple[Api, ...]
    # The ONNX graphs the import exports (empty: the family runs on torch only, whatever
    # IMAGE_EMBED_ENGINE says). Each replaces one method of `apis`.
    graphs: tuple[Graph, ...] = ()
    # files the ONNX engine reads beside the graphs (CLIP's text tokenizer, its logit scale):
    # the family module's materialize writes them beside the weights, and its
    # `complete(spec, dir)` adds those an older import left out, from the weights (offline);
    # models/store.py copies them into the model's ONNX entry
    stored_files: tuple[str, ...] = ()
    # the family's own fields of the runner's `info` answer, from the spec and the loaded model
    info: Callable[[ModelSpec, Any], dict[str, Any]] = _no_extra

    @property
    def methods_without_graph(self) -> list[str]:
        """The model methods its APIs call that no ONNX graph replaces (they need torch)."""
        graphs = {graph.method for graph in self.graphs}
        return [api.method for api in self.apis if api.method not in graphs]

    def __post_init__(self) -> None:
        for api in self.apis:
            if api.io not in IO_KINDS:
                raise ValueError(f"{self.module}: API {api.name!r} has unknown io {api.io!r}; use one of {IO_KINDS}")
        methods = {api.method for api in self.apis}
        for graph in self.graphs:
            if graph.method not in methods:
                raise ValueError(f"{self.module}: graph {graph.name!r} serves {graph.method!r}, which no API calls")


def _embedding(pooling: str | None = None) -> Callable[[ModelSpec, Any], dict[str, Any]]:
    def info(spec: ModelSpec, model: Any) -> dict[str, Any]:
        return {"embedding_size": spec.output_dim, **({"pooling": pooling} if pooling else {})}

    return info


def _clip(spec: ModelSpec, model: Any) -> dict[str, Any]:
    """The logit scale comes from the loaded model's own entry (the ONNX entry in the lean image)."""
    scale = family_module(spec).stored_logit_scale(model.model_dir)  # models.clip (by name: no import circle)
    return {"embedding_size": spec.output_dim, "logit_scale": scale}


def _detector(spec: ModelSpec, model: Any) -> dict[str, Any]:
    from .detection import MAX_DETECTIONS

    return {"dtype": "float32", "canvas": spec.input_size, "max_detections": MAX_DETECTIONS}


def _face(spec: ModelSpec, model: Any) -> dict[str, Any]:
    return {**_detector(spec, model), "weights": spec.weights_source, "settings": model.settings}


def _caption(spec: ModelSpec, model: Any) -> dict[str, Any]:
    from .caption import MAX_CAPTION_LENGTH

    return {"input_size": spec.input_size, "max_caption_length": MAX_CAPTION_LENGTH}


def _embedder(module: str, model_class: str, name: str, doc: str, pooling: str) -> Family:
    """A family whose models embed images with one API (`encode_images` of the model)."""
    api = Api(name=name, method="encode_images", io="images", limits="encode_images", doc=doc)
    graphs = (Graph(name="image", method="encode_images"),)
    return Family(module=module, model_class=model_class, apis=(api,), graphs=graphs, info=_embedding(pooling))


Info = Callable[[ModelSpec, Any], dict[str, Any]]


def _detector_family(module: str, model_class: str, doc: str, info: Info) -> Family:
    """A family whose models detect boxes with one API (`detect` of the model)."""
    api = Api(name="detect", method="detect", io="images", limits="detect", doc=doc)
    return Family(module=module, model_class=model_class, apis=(api,), info=info)


FAMILIES: dict[str, Family] = {
    "open_clip": Family(
        module="models.clip",
        model_class="ClipModel",
        apis=(
            Api(
                name="encode_images",
                method="encode_images",
                io="images",
                limits="encode_images",
                doc="uint8 (n, 224, 224, 3), already resized by the gateway -> float32 (n, 512).",
            ),
            Api(
                name="encode_texts",
                method="encode_texts",
                io="texts",
                limits="encode_texts",
                doc="Strings -> float32 (n, 512) in the image embeddings' space.",
            ),
        ),
        graphs=(
            Graph(name="image", method="encode_images"),
            Graph(name="text", method="encode_texts", inputs="tokens"),
        ),
        stored_files=CLIP_SERVING_FILES,
        info=_clip,
    ),
    "dino": _embedder(
        "models.dino",
        "DinoModel",
        "encode_{key}",
        "uint8 (n, 224, 224, 3) from prepare_images(..., this model's spec) -> float32 (n, d): "
        "the CLS token after the final layer norm (pooler_output), L2-normalized.",
        "CLS token after the final layer norm (pooler_output), L2-normalized",
    ),
    "timm": _embedder(
        "models.timm_vit",
        "InternVitModel",
        "encode_images",
        "uint8 (n, 448, 448, 3) images or views -> float32 (n, d): mean-pooled patch tokens, L2-normalized.",
        "mean of the patch tokens of forward_features (CLS token excluded), L2-normalized",
    ),
    "torchvision_detection": _detector_family(
        "models.person",
        "PersonDetector",
        "uint8 (n, 800, 800, 3) letterboxed by the gateway -> float32 (n, 32, 5): person boxes "
        "`[xmin, ymin, xmax, ymax, score]` in canvas pixels, best first, zero-padded.",
        _detector,
    ),
    "facenet_mtcnn": _detector_family(
        "models.face",
        "FaceDetector",
        "uint8 (n, 640, 640, 3) letterboxed by the gateway -> float32 (n, 32, 5): faces "
        "`[xmin, ymin, xmax, ymax, probability]` in canvas pixels, best first, zero-padded.",
        _face,
    ),
    "transformers_blip": Family(
        module="models.caption",
        model_class="Captioner",
        apis=(
            Api(
                name="caption",
                method="caption",
                io="captions",
                limits="caption",
                doc="One caption per request, in order: the batch is generated once to the largest "
                "max_length and each caption is cut to its own (greedy decoding makes that exact).",
            ),
        ),
        info=_caption,
    ),
}


def family_of(spec: ModelSpec) -> Family:
    try:
        return FAMILIES[spec.family]
    except KeyError:
        raise ValueError(f"no loader for model family {spec.family!r}") from None


def family_module(spec: ModelSpec) -> ModuleType:
    """The module with `materialize(spec, dir)` and the model class of `spec`'s family."""
    return importlib.import_module(family_of(spec).module)


def api_for(spec: ModelSpec, method: str) -> Api | None:
    """The runner API of `spec` that calls the model method `method`, or None."""
    return next((api for api in family_of(spec).apis if api.method == method), None)


def embeds_images(spec: ModelSpec) -> bool:
    """An image embedding model: a vector per image (CLIP, DINO, InternViT; not detectors)."""
    return spec.output_dim is not None and api_for(spec, "encode_images") is not None


def embeds_texts(spec: ModelSpec) -> bool:
    """Its texts land in its images' space (CLIP's text tower)."""
    return embeds_images(spec) and api_for(spec, "encode_texts") is not None


def embedding_keys(texts: bool = False) -> tuple[str, ...]:
    """The current profile's models that embed images (with `texts`: and texts), registry order."""
    from .registry import list_models

    check = embeds_texts if texts else embeds_images
    return tuple(spec.key for spec in list_models() if check(spec))
