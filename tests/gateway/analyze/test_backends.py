"""The runner calls of the analyze API, against fake runner objects with the agreed interfaces
(DINO: `dino.encode_dinov2` / `encode_dinov3` on uint8 batches -> float32 (n, d))."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

import numpy as np
import pytest
from bentoml.exceptions import BentoMLException

from gateway.analyze.backends import ModelNotDeployed, RunnerBackends
from gateway.errors import RunnerUnavailable
from gateway.runner_client import RunnerClient
from runners.io import CaptionRequest


class FakeRunner:
    def __init__(self, **apis):
        self.seen: list[tuple[str, object]] = []

        def make(name, fn):
            async def call(arg):
                self.seen.append((name, arg))
                return fn(arg)

            return call

        self.to_async = SimpleNamespace(**{name: make(name, fn) for name, fn in apis.items()})


def backends_over(served=None, **runners) -> RunnerBackends:
    """The analyze backends over a runner client holding these fake runners; by default it
    serves every model those runners host."""
    hosted = {"clip": ["clip"], "dino": ["dinov2", "dinov3"], "person": ["person"], "face": ["face"], "caption": ["caption"]}
    if served is None:
        served = [m for name in runners for m in hosted[name]]
    return RunnerBackends(RunnerClient(runners, served))


def vectors(d):
    return lambda batch: np.ones((len(batch), d), dtype=np.float32) / np.sqrt(d)


def test_embeddings_go_to_each_models_batchable_api():
    clip = FakeRunner(encode_images=vectors(512))
    dino = FakeRunner(encode_dinov2=vectors(768), encode_dinov3=vectors(1024))
    backends = backends_over(clip=clip, dino=dino)
    pixels = np.zeros((1, 224, 224, 3), np.uint8)
    shapes = [asyncio.run(backends.embed(key, pixels)).shape for key in ("clip", "dinov2", "dinov3")]
    assert shapes == [(1, 512), (1, 768), (1, 1024)]
    assert [name for name, _ in dino.seen] == ["encode_dinov2", "encode_dinov3"]
    assert dino.seen[0][1] is pixels and clip.seen[0][1] is pixels


def test_detectors_and_captions():
    person = FakeRunner(detect=lambda b: np.zeros((len(b), 32, 5), np.float32))
    caption = FakeRunner(caption=lambda reqs: [f"len {r.max_length}" for r in reqs])
    backends = backends_over(person=person, face=person, caption=caption)
    canvas = np.zeros((1, 800, 800, 3), np.uint8)
    assert asyncio.run(backends.detect_persons(canvas)).shape == (1, 32, 5)
    assert asyncio.run(backends.detect_faces(canvas)).shape == (1, 32, 5)
    pixels = np.zeros((1, 384, 384, 3), np.uint8)
    assert asyncio.run(backends.caption(pixels, 17)) == "len 17"
    (request,) = caption.seen[0][1]
    assert isinstance(request, CaptionRequest) and request.max_length == 17 and request.pixels.shape == (384, 384, 3)


def test_a_missing_runner_or_model_is_not_deployed():
    backends = backends_over(clip=FakeRunner(encode_images=vectors(512)))
    with pytest.raises(ModelNotDeployed, match="this task needs the dinov2 model, which this server does not serve"):
        asyncio.run(backends.embed("dinov2", np.zeros((1, 8, 8, 3), np.uint8)))
    with pytest.raises(ModelNotDeployed, match="not part of this server"):
        backends.spec("no-such-model")
    assert backends.spec("clip").key == "clip"


@pytest.mark.parametrize(("status", "message"), [(504, "the caption model timed out"), (500, "the caption model failed (HTTP 500)")])
def test_a_runner_timeout_or_failure_fails_the_task_naming_the_model(status, message):
    from gateway.analyze.schemas import TaskFailed

    def failing(_):
        raise BentoMLException("Not able to process the request in 50 seconds", error_code=status)

    backends = backends_over(caption=FakeRunner(caption=failing))
    with pytest.raises(TaskFailed, match=re.escape(message)):
        asyncio.run(backends.caption(np.zeros((1, 384, 384, 3), np.uint8), 10))


def test_an_overloaded_runner_is_unavailable():
    def overloaded(_):
        raise BentoMLException("busy", error_code=503)

    backends = backends_over(dino=FakeRunner(encode_dinov3=overloaded))
    with pytest.raises(RunnerUnavailable) as info:
        asyncio.run(backends.embed("dinov3", np.zeros((1, 8, 8, 3), np.uint8)))
    assert info.value.runner == "dinov3"
