"""Line fits (compiled) against numpy's polyfit, and the robust line against the numpy formulation it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.lines import fit_line, robust_line


def reference(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    ok = np.isfinite(v)
    if ok.sum() == 0:
        return v
    if ok.sum() < 3:
        return np.full_like(v, np.median(v[ok]))
    for _ in range(2):
        coef = np.polyfit(y[ok], v[ok], 1)
        res = np.abs(np.polyval(coef, y) - v)
        keep = ok & (res <= max(2.0, 3.0 * np.median(res[ok])))
        if keep.sum() < 3 or keep.sum() == ok.sum():
            break
        ok = keep
    return np.polyval(coef, y)


def test_fit_line_is_polyfits_line() -> None:
    rng = np.random.default_rng(0)
    for n in (2, 3, 12, 300):
        x = np.sort(rng.uniform(0, 1000, n))
        y = 0.3 * x - 20 + rng.normal(0, 2, n)
        np.testing.assert_allclose(fit_line(x, y), np.polyfit(x, y, 1), rtol=1e-12, atol=1e-10)
    assert fit_line(np.full(4, 5.0), np.arange(4.0)) == (0.0, 1.5)  # one x: level at the mean
    with pytest.raises(ValueError, match="two or more points"):
        fit_line(np.zeros(1), np.zeros(1))


@pytest.mark.parametrize("seed", [0, 1])
def test_robust_line_is_the_numpy_formulations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for trial in range(1000):
        n = int(rng.integers(1, 14))  # a page's rows, or a row's strips
        y = np.sort(rng.uniform(0, 300, n))
        v = 0.01 * y + 50 + rng.normal(0, rng.uniform(0.1, 5), n)
        if trial % 3 == 0:
            v[rng.random(n) < 0.2] = np.nan  # rows without an end
        if trial % 5 == 0:
            v[rng.integers(0, n)] += 20  # an outlier
        np.testing.assert_allclose(robust_line(y, v), reference(y, v), rtol=0, atol=1e-9)


def test_robust_line_drops_an_outlier_and_fills_gaps() -> None:
    y = np.arange(8.0) * 40
    v = 100 + 0.05 * y
    v[3], v[5] = 130.0, np.nan
    np.testing.assert_allclose(robust_line(y, v), 100 + 0.05 * y, atol=1e-9)
