"""Zero-shot ranking's arithmetic: cosine scores and the softmax of the logit-scaled scores."""

from __future__ import annotations

import numpy as np

from gateway.rank import rank_scores


def test_scores_are_cosines_and_probabilities_the_scaled_softmax():
    rng = np.random.default_rng(0)
    image = rng.normal(size=8)
    image /= np.linalg.norm(image)
    texts = rng.normal(size=(5, 8))
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    scores, probs = rank_scores(image.astype(np.float32), texts.astype(np.float32), 100.0)
    np.testing.assert_allclose(scores, texts @ image, atol=1e-6)
    expected = np.exp(100 * (texts @ image)) / np.exp(100 * (texts @ image)).sum()
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert abs(probs.sum() - 1) < 1e-12


def test_large_scales_do_not_overflow():
    scores, probs = rank_scores(np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 1.0]]), 1e4)
    assert np.isfinite(probs).all() and probs[0] == 1.0 and scores.tolist() == [1.0, 0.0]
