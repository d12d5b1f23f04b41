"""A panel's isoelectric level: the densest height of its trace (:func:`isoelectric_level`).

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache). The numpy version
(a ``bincount``, scipy's ``gaussian_filter1d``, ``argmax``, a mask and ``median``) made ~12 numpy calls a panel,
~20 panels a page; compiled it is one call, with the same arithmetic: the histogram is smoothed as scipy's
symmetric correlation does it (centre first, then each mirrored pair from the outermost in, ``reflect`` edges),
so the level is the same to the bit.
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel

SMOOTH_SIGMA = 1.0  # px: the histogram's smoothing
_RADIUS = int(4.0 * SMOOTH_SIGMA + 0.5)  # scipy's gaussian_filter1d truncates at 4 sigma
_OFFSETS = np.arange(-_RADIUS, _RADIUS + 1)
_WEIGHTS = np.exp(-0.5 / SMOOTH_SIGMA**2 * _OFFSETS.astype(np.float64) ** 2)
_WEIGHTS = np.ascontiguousarray(_WEIGHTS / _WEIGHTS.sum())  # scipy's kernel, symmetric


@kernel("int64(int64, int64)")
def _reflect(index: int, n: int) -> int:  # pragma: no cover
    """scipy.ndimage's ``reflect`` edge (d c b a | a b c d | d c b a) for any ``index``."""
    period = 2 * n
    k = index % period
    return k if k < n else period - 1 - k


@kernel("float64(float64[::1], float64[::1])")
def _level(values: np.ndarray, weights: np.ndarray) -> float:  # pragma: no cover
    lo = np.floor(values.min())
    bins = np.zeros(int(values.max() - lo) + 1)
    for v in values:
        bins[int(v - lo)] += 1.0
    n = bins.size
    radius = (weights.size - 1) // 2
    best, peak = -1.0, 0
    for i in range(n):
        total = bins[i] * weights[radius]
        for j in range(radius, 0, -1):
            total += (bins[_reflect(i - j, n)] + bins[_reflect(i + j, n)]) * weights[radius + j]
        if total > best:  # the first of equal maxima, as argmax
            best, peak = total, i
    centre = peak + lo
    near = values[np.abs(values - centre - 0.5) <= 1.5]
    return np.median(near) if near.size else centre


def isoelectric_level(values: np.ndarray) -> float:
    """The densest value of ``values`` (a panel's trace heights in px): 1-px bins, lightly smoothed, refined by the
    median of the values near the densest bin."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("isoelectric_level needs finite values")
    return float(_level(values, _WEIGHTS))
