"""Medians: of a 1-D array of finite values (:func:`median`), and per column of the values a mask selects
(:func:`column_medians`: a trace row's pen thickness and stroke half-width from its flat columns).

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache): the tracer took them
row by row, a mask, a boolean index and ``np.median`` per row (~17 numpy calls a row, two medians for each of up
to 12 rows a page). numba's ``np.median`` averages the two middle values as numpy's does, so the medians are the
same to the bit (for integer values too: they are exact in float64, where numpy averages them). ``np.median`` itself
makes ~40 Python-level calls (its dispatch, NaN check and mean of the middle pair), the grid's phase three a row.
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel


@kernel("float64(float64[::1])")
def _median(values: np.ndarray) -> float:  # pragma: no cover
    return np.median(values)


def median(values: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D array of finite values (float64), in one compiled call."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"median needs a non-empty 1-D array, got shape {values.shape}")
    return _median(values)


@kernel("float64[::1](float64[:, ::1], boolean[:, ::1], float64[::1])")
def _column_medians(values: np.ndarray, mask: np.ndarray, fallback: np.ndarray) -> np.ndarray:  # pragma: no cover
    n, m = values.shape
    out = np.empty(m)
    picked = np.empty(n)
    for j in range(m):
        k = 0
        for i in range(n):
            if mask[i, j]:
                picked[k] = values[i, j]
                k += 1
        out[j] = np.median(picked[:k]) if k else fallback[j]
    return out


def column_medians(values: np.ndarray, mask: np.ndarray, fallback: np.ndarray | float) -> np.ndarray:
    """Per column of (N, M) ``values``, the median of the finite values where ``mask`` is set (float64), or
    ``fallback`` (per column, or one for all) where it is set nowhere."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    mask = np.ascontiguousarray(mask, dtype=np.bool_)
    if values.ndim != 2 or mask.shape != values.shape:
        raise ValueError(f"expected (N, M) values and a mask alike, got {values.shape} and {mask.shape}")
    if not np.isfinite(values[mask]).all():
        raise ValueError("column_medians needs finite values where the mask is set")
    fallback = np.array(np.broadcast_to(np.asarray(fallback, np.float64), values.shape[1:]))  # writable, contiguous
    return _column_medians(values, mask, fallback)
