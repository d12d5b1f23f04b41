"""Per-column medians over a mask (compiled) against numpy's median, column by column."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.medians import column_medians, median


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_column_medians_are_numpys(dtype: type) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        n, m = int(rng.integers(1, 40)), int(rng.integers(1, 13))
        values = (rng.normal(0, 5, (n, m)) if dtype is np.float64 else rng.integers(0, 9, (n, m))).astype(dtype)
        mask = rng.random((n, m)) < rng.uniform(0, 1)
        fallback = rng.normal(size=m)
        want = [np.median(values[mask[:, j], j]) if mask[:, j].any() else fallback[j] for j in range(m)]
        np.testing.assert_array_equal(column_medians(values, mask, fallback), want)
    assert column_medians(np.zeros((3, 2)), np.zeros((3, 2), bool), 1.0).tolist() == [1.0, 1.0]


def test_column_medians_refuse_mismatched_or_nan_values() -> None:
    with pytest.raises(ValueError, match="alike"):
        column_medians(np.zeros((3, 2)), np.zeros((2, 3), bool), 0.0)
    with pytest.raises(ValueError, match="finite"):
        column_medians(np.array([[np.nan]]), np.ones((1, 1), bool), 0.0)


def test_median_is_numpys() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 17, 250):
        values = rng.normal(0, 3, n)
        assert median(values) == np.median(values)
    assert median(np.array([3, 1, 2, 8])) == 2.5  # integers: their middle pair's mean
    with pytest.raises(ValueError, match="non-empty"):
        median(np.zeros(0))
