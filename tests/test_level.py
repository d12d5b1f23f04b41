"""A panel's isoelectric level (compiled) against the numpy formulation it replaced: bincount, scipy's
Gaussian smoothing, argmax and the median of the values near the peak."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from derc.digitize.level import isoelectric_level


def reference(values: np.ndarray) -> float:
    lo = np.floor(values.min())
    hist = np.bincount((values - lo).astype(np.int64))
    peak = int(np.argmax(gaussian_filter1d(hist.astype(np.float64), 1.0))) + lo
    near = values[np.abs(values - peak - 0.5) <= 1.5]
    return float(np.median(near)) if near.size else float(peak)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_level_is_numpys_to_the_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(300):
        n = int(rng.integers(1, 600))
        if trial % 3 == 0:  # a trace's heights: continuous, any spread
            values = rng.normal(80, rng.uniform(0.1, 20), n)
        elif trial % 3 == 1:  # quarter-pixel steps: ties in the smoothed histogram
            values = np.round(rng.normal(80, 3, n) * 4) / 4
        else:  # a span of a few pixels, shorter than the smoothing's reach (its reflected edges wrap)
            values = rng.integers(0, 3, n) + rng.uniform(0, 1)
        assert isoelectric_level(values) == reference(values)


def test_level_of_a_flat_trace_with_a_spike_is_its_baseline() -> None:
    values = np.full(400, 120.25)
    values[200:210] = np.linspace(60, 118, 10)  # a QRS: few samples, far from the baseline
    assert isoelectric_level(values) == 120.25


def test_level_refuses_empty_or_non_finite_values() -> None:
    with pytest.raises(ValueError, match="finite"):
        isoelectric_level(np.zeros(0))
    with pytest.raises(ValueError, match="finite"):
        isoelectric_level(np.array([1.0, np.nan]))
