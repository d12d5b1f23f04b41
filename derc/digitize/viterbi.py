"""The tracer's dynamic programme: the cheapest path through each row's window, column by column.

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache): a column's update is
two sweeps over the window, which as numpy calls cost ~50 us of interpreter overhead per column and row
(0.3 s of a 12x1 page) and compiled cost a tenth of that. The costs themselves (:func:`path_costs`) are made in
one compiled pass too: as numpy's eight whole-window passes they cost more than the programme (~1 ms a 224x288
page, of ~25 ms digitizing it).
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
    ptr = np.empty((n, k), np.int32)  # back-pointers of the row being traced
    d = np.full(k, claim_cost)  # cost of the best path ending at each window pixel (typed like claim_cost)
    u = np.full(k, claim_cost)  # this column's unary costs, claims added
    c = np.empty(k, np.float32)  # cumulative vertical-move cost down the window
    from_above = np.full(k, claim_cost)
    inf = np.full(1, claim_cost)
    inf[0] = np.inf
    zero = claim_cost - claim_cost
    arg_above = np.empty(k, np.int32)
    for row in range(r):
        for y in range(k):
            d[y] = unary[0, row, y] + (claim_cost if claims and claimed[0, row, y] else zero)
            ptr[0, y] = y
        for i in range(1, n):
            for y in range(k):
                u[y] = unary[i, row, y] + (claim_cost if claims and claimed[i, row, y] else zero)
            if resets[i, row]:  # a new panel starts: any jump is free
                j = 0
                for y in range(1, k):
                    if d[y] < d[j]:
                        j = y
                dj = d[j]
                for y in range(k):
                    ptr[i, y] = j
                    d[y] = u[y] + dj
                continue
            c[0] = 0.0
            for y in range(1, k):
                c[y] = c[y - 1] + step[i, row, y - 1]
            # from y' <= y costs d[y'] - c[y'] + c[y]; ties go to the nearest y'
            best = inf[0]
            arg = 0
            for y in range(k):
                m = d[y] - c[y]
                if m <= best:
                    best = m
                    arg = y
                from_above[y] = best + c[y]
                arg_above[y] = arg
            # from y' >= y costs d[y'] + c[y'] - c[y]; taken only when strictly cheaper
            best = inf[0]
            arg = k - 1
            for y in range(k - 1, -1, -1):
                m = d[y] + c[y]
                if m <= best:
                    best = m
                    arg = y
                from_below = best - c[y]
                if from_below < from_above[y]:
                    ptr[i, y] = arg
                    d[y] = u[y] + from_below
                else:
                    ptr[i, y] = arg_above[y]
                    d[y] = u[y] + from_above[y]
        j = 0
        for y in range(1, k):
            if d[y] < d[j]:
                j = y
        path[n - 1, row] = j
        for i in range(n - 1, 0, -1):
            path[i - 1, row] = ptr[i, path[i, row]]
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
