"""A naive one-forward-per-request CLIP server: the baseline bench/clip.py compares with.

    python -m bench.naive_server --profile bench --port 8123

What the old seed services did: one FastAPI app under uvicorn (one worker); each request reads
its upload, decodes it (the same safe decoder as the gateway), resizes it and runs the model on a
batch of ONE, in a worker thread, one forward at a time behind a lock. Same model class, same
weights (from the BentoML model store), same preprocessing as the real server: only the serving
strategy differs. Not for production; it exists to be measured against.

    POST /encode_image   multipart field `image` -> JSON list of floats (like the gateway's)
    GET  /readyz         200 once the model is loaded and warmed up, with a few facts
"""

from __future__ import annotations

import argparse
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path

# At module level: FastAPI resolves the handlers' (string) annotations in this module's globals.
from fastapi import FastAPI, File, UploadFile
from fastapi.responses import JSONResponse

ROOT = Path(__file__).resolve().parent.parent


def build_app(profile: str):
    import anyio
    import numpy as np

    from intake.decode import decode_image
    from intake.errors import ClientError
    from config.sections import IntakeSettings
    from models import get_spec
    from models.preprocess import prepare_images

    spec = get_spec("clip", profile)
    settings = IntakeSettings()
    state: dict = {}
    forward_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(_app):
        import torch

        from models.clip import ClipModel
        from models.device import select_device
        from models.store import model_dir

        device = select_device()
        model = ClipModel(spec, model_dir(spec), device)
        model.encode_images(np.zeros((1, spec.input_size, spec.input_size, 3), dtype=np.uint8))
        state.update(model=model, device=device.device, torch_threads=torch.get_num_threads())
        yield
        state.clear()

    app = FastAPI(lifespan=lifespan)

    def embed(data: bytes) -> list[float]:
        pixels = prepare_images([decode_image(data, settings).image], spec)
        with forward_lock:
            return state["model"].encode_images(pixels)[0].tolist()

    @app.post("/encode_image")
    async def encode_image(image: UploadFile = File(...)):
        data = await image.read()
        try:
            return await anyio.to_thread.run_sync(embed, data)
        except ClientError as exc:
            return JSONResponse(exc.to_json(), status_code=exc.status)

    @app.get("/readyz")
    async def readyz():
        facts = {k: v for k, v in state.items() if k != "model"}
        return JSONResponse({"ready": "model" in state, "store_tag": spec.store_tag, **facts})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=os.environ.get("IMAGE_EMBED_PROFILE") or "bench")
    parser.add_argument("--port", type=int, default=int(os.environ.get("NAIVE_PORT", "8123")))
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    os.environ["IMAGE_EMBED_PROFILE"] = args.profile

    import uvicorn

    uvicorn.run(build_app(args.profile), host=args.host, port=args.port, workers=1, log_level="warning")


if __name__ == "__main__":
    main()
