"""Straight lines through a few points: least squares (:func:`fit_line`) and with outliers dropped
(:func:`robust_line`): rows' ends and isoelectric lines across a page, a layout's rows against the ink's peaks,
the grid's phase along a row.

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache). ``np.polyfit`` of
degree 1 builds a Vandermonde matrix, scales it and solves it by LAPACK's SVD: ~45 µs for a line through 3-12
points, of which the arithmetic is well under one. A page fitted ~30 such lines (~13 robust ones of two or three
fits each). Here a fit is the closed form about the points' means, which agrees with ``np.polyfit`` to ~1e-15
relative (its SVD rounds differently), so the lines are the same but for the last bits.
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel

# a residual up to this many px, or up to this many times the median residual, keeps its point
MIN_OUTLIER_PX = 2.0
OUTLIER_MEDIANS = 3.0


@kernel("UniTuple(float64, 2)(float64[::1], float64[::1])")
def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:  # pragma: no cover
    """(slope, intercept) of the least-squares line ``y = slope * x + intercept`` (two or more distinct x)."""
    n = x.size
    mx = 0.0
    my = 0.0
    for i in range(n):
        mx += x[i]
        my += y[i]
    mx /= n
    my /= n
    sxy = 0.0
    sxx = 0.0
    for i in range(n):
        dx = x[i] - mx
        sxy += dx * (y[i] - my)
        sxx += dx * dx
    slope = sxy / sxx if sxx > 0 else 0.0
    return slope, my - slope * mx


@kernel("float64[::1](float64[::1], float64[::1])")
def _robust(y: np.ndarray, v: np.ndarray) -> np.ndarray:  # pragma: no cover
    n = v.size
    ok = np.isfinite(v)
    count = ok.sum()
    if count == 0:
        return v.copy()
    if count < 3:
        return np.full(n, np.median(v[ok]))
    slope, intercept = 0.0, 0.0
    res = np.empty(n)
    for _ in range(2):
        slope, intercept = _fit(y[ok], v[ok])
        for i in range(n):
            res[i] = abs(slope * y[i] + intercept - v[i])
        limit = max(MIN_OUTLIER_PX, OUTLIER_MEDIANS * np.median(res[ok]))
        keep = ok & (res <= limit)
        kept = keep.sum()
        if kept < 3 or kept == count:
            break
        ok = keep
        count = kept
    out = np.empty(n)
    for i in range(n):
        out[i] = slope * y[i] + intercept
    return out


def fit_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through the points (``x``, ``y``), as ``np.polyfit(x, y, 1)``
    gives them (to rounding); slope 0 where every x is the same."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"need two or more points, got x {x.shape} and y {y.shape}")
    return _fit(x, y)


def robust_line(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v`` smoothed as a line in ``y``: fitted by least squares, points off it by more than MIN_OUTLIER_PX and
    OUTLIER_MEDIANS times the median residual dropped and the line refitted (at most twice); NaNs filled; the
    median of the finite values where fewer than 3 are finite (``v`` itself where none is)."""
    y = np.ascontiguousarray(y, dtype=np.float64)
    v = np.ascontiguousarray(v, dtype=np.float64)
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError(f"expected two 1-D arrays alike, got {y.shape} and {v.shape}")
    return _robust(y, v)
