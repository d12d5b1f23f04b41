"""The tracer's dynamic programme: the cheapest path through each row's window, column by column.

Compiled with numba when this module is imported (about a second, once per process): a column's update is
two sweeps over the window, which as numpy calls cost ~50 us of interpreter overhead per column and row
(0.3 s of a 12x1 page) and compiled cost a tenth of that.
"""

from __future__ import annotations

import numba
import numpy as np

# float32 or float64 costs (the tracer's second pass adds a float64 penalty); the arithmetic stays in the
# costs' precision, so ties break as they did in the numpy implementation this replaced
_SIGNATURES = [
    f"int32[:, ::1]({dtype}[:, :, ::1], float32[:, :, ::1], boolean[:, ::1])" for dtype in ("float32", "float64")
]


@numba.njit(_SIGNATURES, nogil=True, cache=False)
def _cheapest_paths(unary: np.ndarray, step: np.ndarray, resets: np.ndarray) -> np.ndarray:  # pragma: no cover
    n, r, k = unary.shape
    path = np.empty((n, r), np.int32)
    ptr = np.empty((n, k), np.int32)  # back-pointers of the row being traced
    d = np.empty(k, unary.dtype)  # cost of the best path ending at each window pixel
    c = np.empty(k, np.float32)  # cumulative vertical-move cost down the window
    from_above = np.empty(k, unary.dtype)
    inf = np.full(1, np.inf, unary.dtype)[0]  # typed like the costs
    arg_above = np.empty(k, np.int32)
    for row in range(r):
        for y in range(k):
            d[y] = unary[0, row, y]
            ptr[0, y] = y
        for i in range(1, n):
            if resets[i, row]:  # a new panel starts: any jump is free
                j = 0
                for y in range(1, k):
                    if d[y] < d[j]:
                        j = y
                dj = d[j]
                for y in range(k):
                    ptr[i, y] = j
                    d[y] = unary[i, row, y] + dj
                continue
            c[0] = 0.0
            for y in range(1, k):
                c[y] = c[y - 1] + step[i, row, y - 1]
            # from y' <= y costs d[y'] - c[y'] + c[y]; ties go to the nearest y'
            best = inf
            arg = 0
            for y in range(k):
                m = d[y] - c[y]
                if m <= best:
                    best = m
                    arg = y
                from_above[y] = best + c[y]
                arg_above[y] = arg
            # from y' >= y costs d[y'] + c[y'] - c[y]; taken only when strictly cheaper
            best = inf
            arg = k - 1
            for y in range(k - 1, -1, -1):
                m = d[y] + c[y]
                if m <= best:
                    best = m
                    arg = y
                from_below = best - c[y]
                if from_below < from_above[y]:
                    ptr[i, y] = arg
                    d[y] = unary[i, row, y] + from_below
                else:
                    ptr[i, y] = arg_above[y]
                    d[y] = unary[i, row, y] + from_above[y]
        j = 0
        for y in range(1, k):
            if d[y] < d[j]:
                j = y
        path[n - 1, row] = j
        for i in range(n - 1, 0, -1):
            path[i - 1, row] = ptr[i, path[i, row]]
    return path


def cheapest_paths(unary: np.ndarray, step: np.ndarray, resets: np.ndarray) -> np.ndarray:
    """Cheapest path per row through (N, R, K) unary costs; moving between window pixels k and k+1 in column i
    costs ``step[i, r, k]`` (so vertical strokes follow the ink); where ``resets[i, r]`` any jump is free.

    Ties go to the smallest vertical move; costs are summed in float64 when ``unary`` is float64, else in
    float32. Returns (N, R) int32 window indices.
    """
    unary = np.ascontiguousarray(unary, dtype=np.float64 if unary.dtype == np.float64 else np.float32)
    step = np.ascontiguousarray(step, dtype=np.float32)
    resets = np.ascontiguousarray(resets, dtype=np.bool_)
    if unary.ndim != 3 or step.shape != unary.shape or resets.shape != unary.shape[:2]:
        raise ValueError(f"expected (N, R, K) costs and (N, R) resets, got {unary.shape}, {step.shape}, {resets.shape}")
    if unary.size == 0:
        return np.zeros(unary.shape[:2], dtype=np.int32)
    return _cheapest_paths(unary, step, resets)
