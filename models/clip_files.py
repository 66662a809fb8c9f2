"""The files of a CLIP model entry (models/clip.py writes them; models/families.py names what
ONNX Runtime serving reads beside the graphs), in a module of their own so that the family
table does not import the model code."""

from __future__ import annotations

from .clip_tokenizer import TOKENIZER_FILE

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
LOGIT_SCALE_FILE = "logit_scale.json"  # {"logit_scale": exp(logit_scale) of the weights}
# What ONNX Runtime serving reads beside the graphs (models/families.py `stored_files`): the
# config (open_clip's own tokenizer reads it, for tokenizers without a port), the tokenizer, the
# logit scale of /rank.
SERVING_FILES = (CONFIG_FILE, TOKENIZER_FILE, LOGIT_SCALE_FILE)
