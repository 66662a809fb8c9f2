"""Model-store entries as older versions wrote them, for the tests of moving in
(tests/models/test_store.py, tests/cli/test_import_models.py, tests/integration/test_old_model_store.py).

    python -m tests.models.old_store clip   # in the store of $BENTOML_HOME, tiny profile
"""

from __future__ import annotations

import socket
import sys
from contextlib import contextmanager
from pathlib import Path

from models.clip import LOGIT_SCALE_FILE
from models.clip_tokenizer import TOKENIZER_FILE
from models.specs import ModelSpec


def make_old_entry(spec: ModelSpec, graphs: bool = True) -> Path:
    """`spec`'s weights entry as it was before the ONNX entry and the stored tokenizer: weights
    and config, with the graphs inside (`onnx/`, when `graphs`), without the text tokenizer and
    the logit scale; no ONNX entry. Its folder."""
    import bentoml

    from models.onnx_engine import export_graphs
    from models.store import family_module

    labels = {"key": spec.key, "profile": spec.profile, "project": "image-embed"}
    with bentoml.models.create(spec.store_tag, labels=labels, metadata=spec.to_metadata()) as stored:
        folder = Path(stored.path)
        family_module(spec).materialize(spec, folder)
        if graphs:
            export_graphs(spec, folder, folder)
        for name in (TOKENIZER_FILE, LOGIT_SCALE_FILE):
            (folder / name).unlink(missing_ok=True)
    return Path(bentoml.models.get(spec.store_tag).path)


@contextmanager
def no_network():
    """Every connection and name look-up of this process fails while it is open."""

    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    saved = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    socket.socket.connect = socket.socket.connect_ex = socket.getaddrinfo = refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = saved


if __name__ == "__main__":
    from models import get_spec

    for key in sys.argv[1:]:
        print(make_old_entry(get_spec(key)))
