"""The typed client layer over the runners, against fake runner proxies."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest
from bentoml.exceptions import BentoMLException

from gateway.errors import RunnerTimeout, RunnerUnavailable
from gateway.runner_client import ModelNotServed, RunnerClient
from intake.errors import ClientError


class Fake:
    """A runner proxy: `to_async.<api>(...)` records the call and answers `answers[api]`."""

    def __init__(self, **answers):
        self.calls = []

        def make(name, answer):
            async def call(*args, **kwargs):
                self.calls.append((name, args, kwargs))
                if isinstance(answer, BaseException):
                    raise answer
                return answer(*args, **kwargs) if callable(answer) else answer

            return call

        self.to_async = SimpleNamespace(**{n: make(n, a) for n, a in answers.items()})


def run(coro):
    return asyncio.run(coro)


def test_calls_go_to_the_runner_api_the_registry_names():
    ones = lambda batch: np.ones((len(batch), 4), np.float32)  # noqa: E731
    clip = Fake(encode_images=ones, encode_texts=lambda texts: np.ones((len(texts), 4), np.float32), info={"device": "cpu"})
    dino = Fake(encode_dinov2=ones, encode_dinov3=ones, encode_dinov2_giant=ones)
    caption = Fake(caption=lambda reqs: [f"n={r.max_length}" for r in reqs])
    person = Fake(detect=lambda canvases: np.zeros((len(canvases), 32, 5), np.float32))
    runners = RunnerClient(
        {"clip": clip, "dino": dino, "caption": caption, "person": person},
        ["clip", "dinov2", "dinov3", "dinov2_giant", "caption", "person"],
    )
    batch = np.zeros((2, 8, 8, 3), np.uint8)
    assert run(runners.embed_images("clip", batch)).shape == (2, 4)
    assert run(runners.embed_texts("clip", ["a"])).shape == (1, 4)
    for key in ("dinov2", "dinov3", "dinov2_giant"):
        run(runners.embed_images(key, batch))
    assert [c[0] for c in dino.calls] == ["encode_dinov2", "encode_dinov3", "encode_dinov2_giant"]
    assert run(runners.detect("person", batch)).shape == (2, 32, 5)
    assert run(runners.caption(np.zeros((384, 384, 3), np.uint8), 7)) == "n=7"
    assert run(runners.cached_info("clip")) == {"device": "cpu"} == run(runners.cached_info("clip"))
    assert [c[0] for c in clip.calls].count("info") == 1


def test_a_model_not_served_is_a_404_naming_it_and_the_served_ones():
    runners = RunnerClient({"clip": Fake(), "dino": Fake()}, ["clip", "dinov2", "face"])
    for call in (runners.embed_images("internvit", np.zeros((1, 8, 8, 3), np.uint8)),
                 runners.embed_images("dinov3", np.zeros((1, 8, 8, 3), np.uint8))):
        with pytest.raises(ModelNotServed) as err:
            run(call)
        assert err.value.status == 404 and err.value.code == "model_not_served"
    assert "needs the dinov3 model" in err.value.detail
    with pytest.raises(ModelNotServed) as err:
        runners.embedding_spec("nope")
    assert "needs the nope model" in err.value.detail and "(it serves clip, dinov2)" in err.value.detail  # embedding models


def test_text_to_a_model_that_embeds_images_only_is_a_400_naming_the_text_models():
    runners = RunnerClient({"clip": Fake(), "dino": Fake(encode_dinov2=lambda b: b)}, ["clip", "dinov2"])
    assert runners.embedding_models() == ["clip", "dinov2"] and runners.embedding_models(texts=True) == ["clip"]
    with pytest.raises(ClientError) as err:
        run(runners.embed_texts("dinov2", ["a cat"]))
    assert (err.value.status, err.value.code) == (400, "model_embeds_images_only")
    assert "dinov2 model embeds images only" in err.value.detail and "embed texts here: clip" in err.value.detail


@pytest.mark.parametrize(
    ("status", "error"), [(503, RunnerUnavailable), (429, RunnerUnavailable), (504, RunnerTimeout), (400, ClientError)]
)
def test_runner_failures_are_translated_in_one_place(status, error):
    runners = RunnerClient({"person": Fake(detect=BentoMLException("x", error_code=status))}, ["person"])
    with pytest.raises(error):
        run(runners.detect("person", np.zeros((1, 8, 8, 3), np.uint8)))


def test_index_refusals_become_client_errors():
    index = Fake(stats={"error": "index_not_found", "detail": "no index 'x'", "status": 404}, delete={"deleted": 1})
    runners = RunnerClient({"index": index}, [])
    with pytest.raises(ClientError) as err:
        run(runners.index.stats(index="x"))
    assert (err.value.status, err.value.code) == (404, "index_not_found")
    assert run(runners.index.delete(index="x", keys=["k"])) == {"deleted": 1}
    full = Fake(upsert={"error": "insufficient_storage", "detail": "the filesystem holding /d/x is full", "status": 507})
    with pytest.raises(ClientError) as err:
        run(RunnerClient({"index": full}, []).index.upsert(index="x"))
    assert (err.value.status, err.value.code) == (507, "insufficient_storage")
