"""Where each row's trace starts and ends (:func:`row_ends`): the x anchors of the page's time axis.

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache): per row the numpy
version took ~15 calls (a band maximum, the runs of ink, the sub-pixel crossing), up to 12 rows and two or three
layout fits a page. Compiled, the same float32 arithmetic as numpy's (an end is ``a - fraction`` in float32,
as numpy computed an int less a float32), so the ends are the same to the bit.
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel
from derc.digitize.steep import edge_frac


@kernel("UniTuple(float64[::1], 2)(float32[:, ::1], float64[::1], int64, int64, float32)")
def _row_ends(
    ink: np.ndarray, rows_px: np.ndarray, half: int, min_run: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    h, w = ink.shape
    lefts = np.full(rows_px.size, np.nan)
    rights = np.full(rows_px.size, np.nan)
    prof = np.empty(w, np.float32)
    for r in range(rows_px.size):
        lo, hi = int(max(0.0, rows_px[r] - half)), int(min(float(h), rows_px[r] + half + 1))
        if hi - lo < 2:
            continue
        for x in range(w):
            top = ink[lo, x]
            for y in range(lo + 1, hi):
                top = max(top, ink[y, x])
            prof[x] = top
        first, last = -1, -1  # the first long run's start, the last one's end
        x = 0
        while x < w:
            if not prof[x] > threshold:
                x += 1
                continue
            start = x
            while x < w and prof[x] > threshold:
                x += 1
            if x - start >= min_run:
                if first < 0:
                    first = start
                last = x - 1
        if first < 0:
            continue
        outside_l = prof[first - 1] if first > 0 else np.float32(0.0)
        outside_r = prof[last + 1] if last < w - 1 else np.float32(0.0)
        lefts[r] = np.float32(first) - edge_frac(prof[first], outside_l, threshold)
        rights[r] = np.float32(last) + edge_frac(prof[last], outside_r, threshold)
    return lefts, rights


def row_ends(
    ink: np.ndarray, rows_px: np.ndarray, half: int, min_run: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row (baseline ``rows_px``), the sub-pixel x where the first run of at least ``min_run`` columns whose
    maximum over the rows within ``half`` px is above ``threshold`` starts, and where the last such run ends (NaN
    where a row has none): each where that maximum crosses ``threshold``, linearly between pixel centres."""
    return _row_ends(
        np.ascontiguousarray(ink, dtype=np.float32),
        np.ascontiguousarray(rows_px, dtype=np.float64),
        int(half),
        int(min_run),
        np.float32(threshold),
    )
