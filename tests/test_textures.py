"""Procedural textures and collages for the style predictor's training set: every kind draws an
RGB square, deterministically from its seed, and is not a flat colour."""

from __future__ import annotations

import random

import numpy as np
import pytest

from msgnet.training.textures import KINDS, SIZE, collage, texture


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_each_kind_draws_a_reproducible_varied_square(kind, seed):
    a = texture(random.Random(seed), kind)
    b = texture(random.Random(seed), kind)
    assert a.mode == "RGB" and a.size == (SIZE, SIZE)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert np.asarray(a).reshape(-1, 3).std(0).max() > 5


def test_collage_keeps_both_pictures(rng_image):
    a, b = rng_image(200, 100, seed=1), rng_image(90, 120, seed=2)
    out = collage(a, b, random.Random(0))
    assert out.mode == "RGB" and out.height == SIZE
    left = np.asarray(a.resize((round(200 * SIZE / 100), SIZE)))[:, :10]
    assert np.array_equal(np.asarray(out)[:, :10], left)
