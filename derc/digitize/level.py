"""A panel's isoelectric level: the densest height of its trace (:func:`isoelectric_level`).

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache). The numpy version
(a ``bincount``, scipy's ``gaussian_filter1d``, ``argmax``, a mask and ``median``) made ~12 numpy calls a panel,
~20 panels a page; compiled it is one call, with the same arithmetic: the histogram is smoothed as scipy's
``gaussian_filter1d`` does it (:mod:`derc.digitize.smooth`), so the level is the same to the bit.
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel
from derc.digitize.smooth import gaussian_weights, smooth_line

SMOOTH_SIGMA = 1.0  # px: the histogram's smoothing
_WEIGHTS = gaussian_weights(SMOOTH_SIGMA)


@kernel("float64(float64[::1], float64[::1])")
def _level(values: np.ndarray, weights: np.ndarray) -> float:  # pragma: no cover
    lo = np.floor(values.min())
    bins = np.zeros(int(values.max() - lo) + 1)
    for v in values:
        bins[int(v - lo)] += 1.0
    smoothed = np.empty_like(bins)
    smooth_line(bins, weights, smoothed)
    centre = np.argmax(smoothed) + lo  # the first of equal maxima
    near = values[np.abs(values - centre - 0.5) <= 1.5]
    return np.median(near) if near.size else centre


def isoelectric_level(values: np.ndarray) -> float:
    """The densest value of ``values`` (a panel's trace heights in px): 1-px bins, lightly smoothed, refined by the
    median of the values near the densest bin."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("isoelectric_level needs finite values")
    return float(_level(values, _WEIGHTS))
