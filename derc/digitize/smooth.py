"""Gaussian smoothing along a line (:func:`gaussian_smooth`), as scipy's ``gaussian_filter1d`` does it, to the bit.

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache). scipy's wrapper makes
~36 Python-level calls a call (argument checks, the kernel, its C correlation), and the digitizer smooths a few
hundred values at a time several times a row. The weights here are scipy's (``exp(-x² / 2σ²)`` at integer ``x`` out
to ``int(4σ + 0.5)``, normalised by numpy's sum) and are applied in scipy's order for a symmetric kernel: the
centre value times the centre weight, then each mirrored pair of values, summed, times its weight, from the
outermost pair in; beyond the ends the line is mirrored (scipy's ``reflect``: d c b a | a b c d | d c b a). So the
results are equal (checked against scipy on random profiles of any length and σ, and in tests/test_smooth.py).
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel

TRUNCATE = 4.0  # scipy's default: the kernel reaches int(TRUNCATE * sigma + 0.5) samples each way


def gaussian_weights(sigma: float) -> np.ndarray:
    """scipy's normalised Gaussian kernel for ``sigma`` (float64, odd length, symmetric)."""
    sigma = float(sigma)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


@kernel("int64(int64, int64)")
def reflect(index: int, n: int) -> int:  # pragma: no cover
    """scipy.ndimage's ``reflect`` edge (d c b a | a b c d | d c b a) for any ``index`` of a line of ``n``."""
    period = 2 * n
    k = index % period
    return k if k < n else period - 1 - k


@kernel("void(float64[::1], float64[::1], float64[::1])")
def smooth_line(values: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out`` = ``values`` correlated with the symmetric ``weights`` in scipy's order, reflected at the ends."""
    n = values.size
    radius = (weights.size - 1) // 2
    for i in range(n):
        total = values[i] * weights[radius]
        for j in range(radius, 0, -1):
            total += (values[reflect(i - j, n)] + values[reflect(i + j, n)]) * weights[radius + j]
        out[i] = total


@kernel("float64[:, ::1](float64[:, ::1], float64[::1])")
def _smooth_lines(lines: np.ndarray, weights: np.ndarray) -> np.ndarray:  # pragma: no cover
    out = np.empty_like(lines)
    for k in range(lines.shape[0]):
        smooth_line(lines[k], weights, out[k])
    return out


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter1d(values, sigma)`` along the last axis (float64, ``reflect`` edges) of a 1-D
    or 2-D array of finite values, the same to the bit."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim not in (1, 2) or values.shape[-1] == 0:
        raise ValueError(f"expected a non-empty 1-D or 2-D array, got shape {values.shape}")
    lines = np.ascontiguousarray(values.reshape(-1, values.shape[-1]))
    return _smooth_lines(lines, gaussian_weights(sigma)).reshape(values.shape)
