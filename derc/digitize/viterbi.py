"""The tracer's dynamic programme: the cheapest path through each row's window, column by column.

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache): a column's update is
two sweeps over the window, which as numpy calls cost ~50 us of interpreter overhead per column and row
(0.3 s of a 12x1 page) and compiled cost a tenth of that. The costs themselves (:func:`path_costs`) are made in
one compiled pass too: as numpy's eight whole-window passes they cost more than the programme (~1 ms a 224x288
page, of ~25 ms digitizing it). Rows are traced two at a time, their sweeps side by side in one loop: each sweep is
a chain of dependent comparisons, and two independent chains keep the core busier (a 896x1152 call 12.6-13.1 ->
9.2-9.5 ms, the same paths).
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel

# The costs are float32, and so is their arithmetic, unless ``claim_cost`` is float64 (the tracer's second pass
# adds a float64 penalty where other rows' paths lie: numpy promoted that sum to float64, and ties break as
# they did in the numpy implementation this replaced); a float64 unary (the API allows one) sums in float64.
_SIGNATURES = [
    f"int32[:, ::1]({unary}[:, :, ::1], float32[:, :, ::1], boolean[:, ::1], boolean[:, :, ::1], {cost})"
    for unary, cost in (("float32", "float32"), ("float32", "float64"), ("float64", "float64"))
]


@kernel(_SIGNATURES)
def _cheapest_paths(
    unary: np.ndarray, step: np.ndarray, resets: np.ndarray, claimed: np.ndarray, claim_cost: float
) -> np.ndarray:  # pragma: no cover
    n, r, k = unary.shape
    claims = claimed.size > 0
    path = np.empty((n, r), np.int32)
    ptr = np.empty((2, n, k), np.int32)  # back-pointers of the two rows being traced
    d = np.full((2, k), claim_cost)  # cost of the best path ending at each window pixel (typed like claim_cost)
    u = np.full((2, k), claim_cost)  # this column's unary costs, claims added
    c = np.empty((2, k), np.float32)  # cumulative vertical-move cost down the window
    from_above = np.full((2, k), claim_cost)
    arg_above = np.empty((2, k), np.int32)
    restart = np.full(2, claim_cost)  # a reset's cost: the cheapest pixel before it
    jump = np.zeros(2, np.int32)  # and that pixel
    inf = np.full(1, claim_cost)
    inf[0] = np.inf
    zero = claim_cost - claim_cost
    lanes = np.zeros(2, np.int64)
    for first in range(0, r, 2):
        lanes[0], lanes[1] = first, min(first + 1, r - 1)  # an odd last row is traced in both lanes
        for q in range(2):
            for y in range(k):
                d[q, y] = unary[0, lanes[q], y] + (claim_cost if claims and claimed[0, lanes[q], y] else zero)
                ptr[q, 0, y] = y
        for i in range(1, n):
            for q in range(2):
                row = lanes[q]
                for y in range(k):
                    u[q, y] = unary[i, row, y] + (claim_cost if claims and claimed[i, row, y] else zero)
                c[q, 0] = 0.0
                for y in range(1, k):
                    c[q, y] = c[q, y - 1] + step[i, row, y - 1]
                if resets[i, row]:  # a new panel starts: any jump is free, from the cheapest pixel so far
                    j = 0
                    for y in range(1, k):
                        if d[q, y] < d[q, j]:
                            j = y
                    jump[q], restart[q] = j, d[q, j]
            # the two rows' scans side by side (two independent chains of comparisons for the CPU to overlap)
            # from y' <= y costs d[y'] - c[y'] + c[y]; ties go to the nearest y'
            best0, best1, arg0, arg1 = inf[0], inf[0], 0, 0
            for y in range(k):
                m0, m1 = d[0, y] - c[0, y], d[1, y] - c[1, y]
                if m0 <= best0:
                    best0, arg0 = m0, y
                if m1 <= best1:
                    best1, arg1 = m1, y
                from_above[0, y], arg_above[0, y] = best0 + c[0, y], arg0
                from_above[1, y], arg_above[1, y] = best1 + c[1, y], arg1
            # from y' >= y costs d[y'] + c[y'] - c[y]; taken only when strictly cheaper
            best0, best1, arg0, arg1 = inf[0], inf[0], k - 1, k - 1
            for y in range(k - 1, -1, -1):
                m0, m1 = d[0, y] + c[0, y], d[1, y] + c[1, y]
                if m0 <= best0:
                    best0, arg0 = m0, y
                if m1 <= best1:
                    best1, arg1 = m1, y
                below0, below1 = best0 - c[0, y], best1 - c[1, y]
                if below0 < from_above[0, y]:
                    ptr[0, i, y], d[0, y] = arg0, u[0, y] + below0
                else:
                    ptr[0, i, y], d[0, y] = arg_above[0, y], u[0, y] + from_above[0, y]
                if below1 < from_above[1, y]:
                    ptr[1, i, y], d[1, y] = arg1, u[1, y] + below1
                else:
                    ptr[1, i, y], d[1, y] = arg_above[1, y], u[1, y] + from_above[1, y]
            for q in range(2):
                if resets[i, lanes[q]]:  # the scan's result for this row is replaced by the jump
                    for y in range(k):
                        ptr[q, i, y] = jump[q]
                        d[q, y] = u[q, y] + restart[q]
        for q in range(2):
            row = lanes[q]
            j = 0
            for y in range(1, k):
                if d[q, y] < d[q, j]:
                    j = y
            path[n - 1, row] = j
            for i in range(n - 1, 0, -1):
                path[i - 1, row] = ptr[q, i, path[i, row]]
    return path


def cheapest_paths(
    unary: np.ndarray,
    step: np.ndarray,
    resets: np.ndarray,
    *,
    claimed: np.ndarray | None = None,
    claim_cost: float = 0.0,
) -> np.ndarray:
    """Cheapest path per row through (N, R, K) unary costs; moving between window pixels k and k+1 in column i
    costs ``step[i, r, k]`` (so vertical strokes follow the ink); where ``resets[i, r]`` any jump is free.
    Where ``claimed`` (boolean, shaped like ``unary``) is set, a pixel costs ``claim_cost`` more.

    Ties go to the smallest vertical move; costs are summed in float64 when ``unary`` is float64 or pixels are
    claimed (as ``unary + claim_cost * claimed`` would be in numpy), else in float32. Returns (N, R) int32 window
    indices.
    """
    wide = unary.dtype == np.float64
    unary = np.ascontiguousarray(unary, dtype=np.float64 if wide else np.float32)
    step = np.ascontiguousarray(step, dtype=np.float32)
    resets = np.ascontiguousarray(resets, dtype=np.bool_)
    if unary.ndim != 3 or step.shape != unary.shape or resets.shape != unary.shape[:2]:
        raise ValueError(f"expected (N, R, K) costs and (N, R) resets, got {unary.shape}, {step.shape}, {resets.shape}")
    if claimed is not None and np.shape(claimed) != unary.shape:
        raise ValueError(f"expected claims shaped like the costs {unary.shape}, got {np.shape(claimed)}")
    if unary.size == 0:
        return np.zeros(unary.shape[:2], dtype=np.int32)
    if claimed is None:
        none = np.zeros((0, 0, 0), np.bool_)
        return _cheapest_paths(unary, step, resets, none, np.float64(0.0) if wide else np.float32(0.0))
    claims = np.ascontiguousarray(claimed, dtype=np.bool_)
    return _cheapest_paths(unary, step, resets, claims, np.float64(claim_cost))


@kernel("boolean[:, :, ::1](int64[:, :, ::1], boolean[:, :, ::1], int64, int64)")
def _claims(pos: np.ndarray, keep: np.ndarray, reach: int, k: int) -> np.ndarray:  # pragma: no cover
    n, r, _ = pos.shape
    out = np.zeros((n, r, k), np.bool_)
    for i in range(n):
        for other in range(r):
            for row in range(r):
                if keep[i, other, row]:
                    p = pos[i, other, row]
                    for y in range(max(0, p - reach), min(k, p + reach + 1)):
                        out[i, row, y] = True
    return out


def claims_near(pos: np.ndarray, keep: np.ndarray, reach: int, k: int) -> np.ndarray:
    """(N, R, K) ``claimed`` for :func:`cheapest_paths`' second pass: ``pos[i, o, r]`` is where row ``o``'s path
    lies in row ``r``'s window at column ``i``; where ``keep[i, o, r]``, the window pixels within ``reach`` of it
    are claimed (the numpy version, fancy-index assignments per offset, cost ~0.35 ms a 224x288 page)."""
    pos = np.ascontiguousarray(pos, dtype=np.int64)
    keep = np.ascontiguousarray(keep, dtype=np.bool_)
    if pos.ndim != 3 or keep.shape != pos.shape or pos.shape[1] != pos.shape[2]:
        raise ValueError(f"expected (N, R, R) positions and keep flags, got {pos.shape}, {keep.shape}")
    return _claims(pos, keep, int(reach), int(k))


# the step cost's 1.01 as the numpy tracer had it (``0.01 + 1.0 - x`` for a float32 x: the double sum, cast)
_STEP_BASE = np.float32(0.01 + 1.0)
_HALF, _STEP_INK, _ZERO, _ONE = np.float32(0.5), np.float32(0.3), np.float32(0.0), np.float32(1.0)


@kernel("UniTuple(float32[:, :, ::1], 2)(float32[:, :, ::1], float32[::1])")
def _path_costs(win: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    n, r, k = win.shape
    unary = np.empty((n, r, k), np.float32)
    step = np.empty((n, r, k), np.float32)
    s = np.empty(k, np.float32)
    for i in range(n):
        prev = i - 1 if i > 0 else 0
        for row in range(r):
            for y in range(k):
                v = win[i, row, y]
                unary[i, row, y] = (_ONE - min(max(v / _HALF, _ZERO), _ONE)) + band[y]
                both = max(v, win[prev, row, y])
                s[y] = _STEP_BASE - min(max(both / _STEP_INK, _ZERO), _ONE)
            for y in range(k - 1):
                step[i, row, y] = min(s[y], s[y + 1])
            step[i, row, k - 1] = _ZERO
    return unary, step


def path_costs(win: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tracer's (unary, step) costs of (N, R, K) float32 row windows of ink (0..1), ``band`` (K,) added to
    the unary cost of each window row: float32, shaped like ``win``, for :func:`cheapest_paths`.

    A pixel's unary cost is 1 less its ink (ink of 0.5 and over counts in full: anti-aliased thin strokes), plus
    ``band``; moving from window row y to y+1 costs 1.01 less the ink (full at 0.3) of this column or the one
    before it, whichever is darker, taken at the lighter of the two pixels: vertical moves are cheap along a
    steep stroke, which may straddle two columns.
    """
    win = np.ascontiguousarray(win, dtype=np.float32)
    band = np.ascontiguousarray(band, dtype=np.float32)
    if win.ndim != 3 or band.shape != win.shape[2:] or win.shape[2] < 2:
        raise ValueError(f"expected (N, R, K>=2) windows and a (K,) band, got {win.shape}, {band.shape}")
    return _path_costs(win, band)
