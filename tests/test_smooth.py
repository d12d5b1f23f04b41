"""Gaussian smoothing (compiled) against scipy's gaussian_filter1d: the same values to the bit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from derc.digitize.smooth import gaussian_smooth, gaussian_weights


@pytest.mark.parametrize("seed", [0, 1])
def test_smoothing_is_scipys_to_the_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(150):
        n, sigma = int(rng.integers(1, 300)), float(rng.uniform(0.3, 30))  # lines shorter than the kernel too
        lines = rng.normal(size=(int(rng.integers(1, 4)), n))
        np.testing.assert_array_equal(gaussian_smooth(lines, sigma), gaussian_filter1d(lines, sigma, axis=1))
        np.testing.assert_array_equal(gaussian_smooth(lines[0], sigma), gaussian_filter1d(lines[0], sigma))
    ints = rng.integers(0, 5, 40).astype(np.float32)  # a histogram, float32 input: smoothed in float64 as scipy's
    np.testing.assert_array_equal(gaussian_smooth(ints, 1.0), gaussian_filter1d(ints.astype(np.float64), 1.0))


def test_weights_and_bad_arguments() -> None:
    w = gaussian_weights(1.0)
    assert w.size == 9 and w.sum() == pytest.approx(1.0) and np.array_equal(w, w[::-1])
    with pytest.raises(ValueError, match="sigma"):
        gaussian_weights(0.0)
    with pytest.raises(ValueError, match="non-empty"):
        gaussian_smooth(np.zeros((2, 0)), 1.0)
