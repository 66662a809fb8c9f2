"""Zero-shot ranking (POST /rank): how well each of a list of texts describes one image.

As clip-as-service's `rank` and BentoCLIP offer it, and as open_clip's zero-shot recipe
computes it: the image and the texts are embedded by the same CLIP model (L2-normalized), each
text's score is its cosine similarity with the image, and the probabilities are the softmax of
the scores times the model's own logit scale (exp(logit_scale) of its weights, about 100 for
OpenAI's CLIPs). The answer lists the texts best first.
"""

from __future__ import annotations

import asyncio

import numpy as np
from pydantic import BaseModel, Field

from .encode import DEFAULT_MODEL, EncodeRoutes
from .images import ImageRef
from .runner_client import RunnerClient


class RankedText(BaseModel):
    index: int = Field(description="the text's position in the request")
    text: str
    score: float = Field(description="cosine similarity of the text's and the image's vectors")
    probability: float = Field(description="softmax over the texts of logit_scale x score")


class RankResponse(BaseModel):
    model: str = Field(description="the model's key")
    logit_scale: float = Field(description="the model's own softmax temperature, exp(logit_scale)")
    results: list[RankedText] = Field(description="every text, best first")


def rank_scores(image: np.ndarray, texts: np.ndarray, logit_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(cosine scores, softmax probabilities) of each text row against the image vector."""
    scores = np.asarray(texts, np.float64) @ np.asarray(image, np.float64)
    logits = logit_scale * scores
    weights = np.exp(logits - logits.max())
    return scores, weights / weights.sum()


class RankRoutes:
    def __init__(self, runners: RunnerClient, encode: EncodeRoutes) -> None:
        self.runners = runners
        self.encode = encode

    async def logit_scale(self, model: str) -> float:
        spec = self.encode.spec(model, texts=True)
        info = await self.runners.cached_info(spec.runner)
        return float(info.get("models", {}).get(model, info)["logit_scale"])  # a runner of several models nests them

    async def rank(self, ref: ImageRef, texts: list[str], model: str = DEFAULT_MODEL) -> RankResponse:
        self.encode.spec(model, texts=True)  # 404 or 400 before any work
        image, vectors, scale = await asyncio.gather(
            self.encode.image_vector(ref, model), self.encode.text_vectors(texts, model), self.logit_scale(model)
        )
        scores, probabilities = rank_scores(np.asarray(image), vectors, scale)
        order = sorted(range(len(texts)), key=lambda i: (-scores[i], i))
        return RankResponse(
            model=model,
            logit_scale=scale,
            results=[
                RankedText(index=i, text=texts[i], score=float(scores[i]), probability=float(probabilities[i]))
                for i in order
            ],
        )
