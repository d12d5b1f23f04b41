"""How well a layout's rows, scaled and shifted onto the page, meet the ink's row peaks: the score the layout fit
ranks its candidates by (:func:`derc.digitize._fit_layout_rows`).

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache): each candidate puts
every row at a predicted height and looks up the nearest peak; as numpy's whole-array steps over all candidates
(25 scales x peaks x rows x rows) this cost ~0.4 ms per layout and call, three layouts a fit. Compiled, the same
comparisons and numpy's summation order, so the scores are the same to the bit.
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel, numpy_sum


@kernel(
    "UniTuple(float64[:, ::1], 2)(float64[::1], float64[::1], float64[::1], float64[::1], float64[:, ::1], float64,"
    " float64)"
)
def _row_scores(
    peaks: np.ndarray, weight: np.ndarray, a: np.ndarray, base: np.ndarray, b: np.ndarray, height: float, tol: float
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    na, nb = b.shape
    rows = base.size
    last = peaks.size - 1
    matched = np.empty((na, nb))
    resid = np.empty((na, nb))
    found = np.empty(rows)
    missed = np.empty(rows)
    for ia in range(na):
        for ib in range(nb):
            for r in range(rows):
                x = a[ia] * base[r] + b[ia, ib]
                # the nearest peak, the lower one on a tie
                above = min(max(np.searchsorted(peaks, x), 0), last)
                below = max(above - 1, 0)
                gap_below, gap_above = abs(x - peaks[below]), abs(x - peaks[above])
                near, dist = (below, gap_below) if gap_below <= gap_above else (above, gap_above)
                found[r] = weight[near] if dist < tol and x > 0 and x < height else 0.0
                missed[r] = dist if dist < tol else tol
            matched[ia, ib] = numpy_sum(found, rows)
            resid[ia, ib] = numpy_sum(missed, rows)
    return matched, resid


def row_scores(
    peaks: np.ndarray, weight: np.ndarray, a: np.ndarray, base: np.ndarray, b: np.ndarray, height: int, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """For rows at ``base`` (mm) placed at ``a[i] * base + b[i, j]`` px on a page ``height`` px tall: (matched,
    resid), each (len(a), b.shape[1]). ``matched`` sums the ``weight`` of the nearest of the ascending ``peaks``
    (px) over the rows that have one within ``tol`` px and lie on the page; ``resid`` sums each row's distance to
    its nearest peak, at most ``tol``."""
    peaks = np.ascontiguousarray(peaks, dtype=np.float64)
    if peaks.size == 0:
        raise ValueError("no peaks to score rows against")
    return _row_scores(
        peaks,
        np.ascontiguousarray(weight, dtype=np.float64),
        np.ascontiguousarray(a, dtype=np.float64),
        np.ascontiguousarray(base, dtype=np.float64),
        np.ascontiguousarray(b, dtype=np.float64),
        float(height),
        float(tol),
    )
