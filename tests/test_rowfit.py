"""The compiled layout-fit scores equal, bit for bit, the numpy formulation they replaced (kept here as the
reference)."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.rowfit import row_scores


def numpy_row_scores(peaks, weight, a, base, b, height, tol):
    pred = a[:, None, None] * base[None, None, :] + b[:, :, None]
    above = np.clip(np.searchsorted(peaks, pred), 0, peaks.size - 1)
    below = np.maximum(above - 1, 0)
    gap_below, gap_above = np.abs(pred - peaks[below]), np.abs(pred - peaks[above])
    take_below = gap_below <= gap_above
    near, dist = np.where(take_below, below, above), np.where(take_below, gap_below, gap_above)
    inside = (pred > 0) & (pred < height)
    matched = np.where((dist < tol) & inside, weight[near], 0.0).sum(axis=-1)
    resid = np.where(dist < tol, dist, tol).sum(axis=-1)
    return matched, resid


@pytest.mark.parametrize("rows", [4, 6, 13])  # the layouts' row counts: sums under and over numpy's 8-way blocks
def test_scores_equal_the_numpy_ones(rows: int) -> None:
    rng = np.random.default_rng(rows)
    height = 224
    for _ in range(20):
        n = int(rng.integers(1, 16))
        peaks = np.sort(rng.uniform(-5, height + 5, n))
        weight = np.minimum(1.0, rng.random(n) * 1.5)
        base = np.sort(rng.uniform(10, 200, rows))
        a = 0.8 * np.linspace(0.88, 1.12, 25)
        b = (peaks[None, :, None] - a[:, None, None] * base[None, None, :]).reshape(a.size, -1)
        tol = 2.5 * 0.8
        got = row_scores(peaks, weight, a, base, b, height, tol)
        expected = numpy_row_scores(peaks, weight, a, base, b, height, tol)
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    # whole-pixel geometry: rows exactly halfway between two peaks (ties, the lower peak wins) and exactly tol away
    peaks, weight = np.array([10.0, 14.0, 30.0, 34.0]), np.array([1.0, 0.5, 0.25, 0.75])
    a, base = np.array([1.0]), np.arange(rows, dtype=np.float64) * 4.0
    b = np.array([[0.0, 2.0, 8.0, 12.0, 20.0]])
    got = row_scores(peaks, weight, a, base, b, height, 2.0)
    expected = numpy_row_scores(peaks, weight, a, base, b, height, 2.0)
    assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    with pytest.raises(ValueError, match="no peaks"):
        row_scores(np.zeros(0), np.zeros(0), a, base, b[:, :0], height, tol)
