"""The tracer's steep-stroke points: where a stroke runs steeper than a pixel per column, its centre line at each
pixel row is the middle of the horizontal ink run there (or two, where an up- and a downstroke touch).

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache): per trace row this
was ~20 numpy calls on a few hundred points (~0.45 ms a row, ~4 ms of a 224x288 page's ~25 ms); compiled, the
same arithmetic in the same order (float32 where the numpy code was float32, numpy's pairwise summation for
the runs' ink sums), so the points are the same to the bit.
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel, numpy_sum
from derc.digitize.runs import _line_run_ends

_MIN_STEP = np.float32(1e-6)
SHORT_SPAN = 16  # runs' ink summed in one padded batch up to this long, the longer ones in a second
MAX_SINGLE_WIDEN = 1.12  # steep strokes (slant under 0.5 px per px) measure the pen's half-width ...
MIN_SINGLE_RUNS = 20  # ... when a row has at least this many of them


@kernel("float32(float32, float32, float32)")
def edge_frac(inside: float, outside: float, threshold: float) -> float:  # pragma: no cover
    """How far (0..1 px) beyond the last inked pixel the ink crosses the threshold, linearly between centres."""
    q = (inside - threshold) / max(inside - outside, _MIN_STEP)
    return min(max(q, np.float32(0.0)), np.float32(1.0))


_VALLEY_DEPTH = np.float32(0.1)  # a pixel this much fainter than both its left and right neighbours splits a run


@kernel(
    "Tuple((int32[:, :, ::1], int32[:, :, ::1], boolean[:, :, ::1]))(float32[:, :, ::1], boolean[:, :, ::1], "
    "int32[:, ::1], int32[:, ::1], boolean[:, ::1], float64[::1], float64[::1])"
)
def _steep_runs(
    win: np.ndarray,
    mask: np.ndarray,
    top: np.ndarray,
    bot: np.ndarray,
    tall: np.ndarray,
    radius: np.ndarray,
    thick: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    n, r, k = win.shape
    split = np.empty((r, k, n), np.bool_)  # inked and no valley: what horizontal runs are made of, lines contiguous
    for i in range(n):
        for row in range(r):
            for y in range(k):
                w = win[i, row, y]
                left = win[i - 1, row, y] if i > 0 else w
                right = win[i + 1, row, y] if i < n - 1 else w
                valley = (w < left - _VALLEY_DEPTH) and (w < right - _VALLEY_DEPTH)
                split[row, y, i] = mask[i, row, y] and not valley
    starts, ends = _line_run_ends(split.reshape(r * k, n))  # the runs along each (row, y) line of columns
    start, end = starts.reshape(r, k, n), ends.reshape(r, k, n)
    steep = np.zeros((n, r, k), np.bool_)
    for i in range(n):
        for row in range(r):
            if not tall[i, row]:
                continue
            first = top[i, row] + radius[row] + 0.5
            last = bot[i, row] - radius[row] - 0.5
            widest = 3.0 * thick[row] + 2.0
            for y in range(k):
                if split[row, y, i] and first <= y <= last and end[row, y, i] - start[row, y, i] + 1 <= widest:
                    steep[i, row, y] = True
    return start, end, steep


def steep_runs(
    win: np.ndarray,
    mask: np.ndarray,
    top: np.ndarray,
    bot: np.ndarray,
    tall: np.ndarray,
    radius: np.ndarray,
    thick: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The horizontal runs that steep strokes are read from, and where a tall column's run is steep.

    ``win`` (N columns, R rows, K window px) is the rows' ink and ``mask`` its inked pixels; runs go along the
    columns and split at valleys (a pixel fainter by 0.1 than its left and right neighbours: the gap between an
    up- and a downstroke that touch). Returns the first and last column of each pixel's run (as
    :func:`derc.digitize.runs.run_ends` gives them, shaped (N, R, K) as views of (R, K, N) arrays) and the steep
    pixels: in a column ``tall`` (a run taller than the row's ``thick``ness plus one), at least the row's pen
    ``radius`` + 0.5 inside the column's own vertical run ``top``..``bot``, on a horizontal run no wider than
    3 * thick + 2 (a stroke's width, slant allowed for). One compiled pass for what were seven whole-window numpy
    passes (~20 ms of an 896x1152 page), with the same float32 comparisons and float64 bounds.
    """
    start, end, steep = _steep_runs(
        np.ascontiguousarray(win, np.float32),
        np.ascontiguousarray(mask, np.bool_),
        np.ascontiguousarray(top, np.int32),
        np.ascontiguousarray(bot, np.int32),
        np.ascontiguousarray(tall, np.bool_),
        np.ascontiguousarray(radius, np.float64),
        np.ascontiguousarray(thick, np.float64),
    )
    return np.moveaxis(start, -1, 0), np.moveaxis(end, -1, 0), steep


_SIGNATURE = (
    "Tuple((float64[::1], float64[::1], int64[::1]))("
    "float32[:, :, ::1], boolean[:, :, ::1], boolean[:, :, ::1], int32[:, :, ::1], int32[:, :, ::1], "
    "int32[:, ::1], int32[:, ::1], boolean[:, ::1], boolean[:, ::1], boolean[:, ::1], float64[:, ::1], "
    "float64[::1], float64[::1], int64[::1], int64, float32)"
)


@kernel(_SIGNATURE)
def _steep_points(
    win: np.ndarray,
    mask: np.ndarray,
    steep: np.ndarray,
    hs: np.ndarray,
    he: np.ndarray,
    top: np.ndarray,
    bot: np.ndarray,
    valid: np.ndarray,
    use_col: np.ndarray,
    flat: np.ndarray,
    col_y: np.ndarray,
    half_w: np.ndarray,
    thick: np.ndarray,
    lo: np.ndarray,
    c0: int,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    # hs, he: (R, K, N), each window row's horizontal runs along the columns (the other arrays are (N, R, ...))
    n, r, k = win.shape
    counts = np.zeros(r, np.int64)
    steep_px = np.zeros(r, np.int64)
    for ci in range(n):
        for j in range(r):
            for kj in range(k):
                steep_px[j] += steep[ci, j, kj]
    xs_out = np.empty(r * n + 2 * steep_px.sum())  # every column and up to two points per steep pixel
    ys_out = np.empty(xs_out.size)
    filled = 0
    for j in range(r):
        # one point set per horizontal run: its first steep pixel, ordered by (pixel row, run start)
        m = steep_px[j]
        pc = np.empty(m, np.int64)
        pk = np.empty(m, np.int64)
        m = 0
        for kj in range(k):
            last = -1
            for ci in range(n):
                if steep[ci, j, kj] and hs[j, kj, ci] != last:
                    last = hs[j, kj, ci]
                    pc[m] = ci
                    pk[m] = kj
                    m += 1
        pc, pk = pc[:m], pk[:m]
        s0 = np.empty(m, np.int64)
        s1 = np.empty(m, np.int64)
        a = np.empty(m, np.int64)
        b = np.empty(m, np.int64)
        short_len, long_len = 0, 0
        for p in range(m):
            s0[p], s1[p] = hs[j, pk[p], pc[p]], he[j, pk[p], pc[p]]
            a[p], b[p] = max(s0[p] - 1, 0), min(s1[p] + 2, n)
            span = b[p] - a[p]
            if span <= SHORT_SPAN:
                short_len = max(short_len, span)
            else:
                long_len = max(long_len, span)
        x_run = np.empty(m)
        x_l = np.empty(m)
        x_r = np.empty(m)
        widen = np.empty(m)
        width = np.empty(m)
        vals = np.empty(n)
        moms = np.empty(n)
        for p in range(m):
            kj = pk[p]
            span = b[p] - a[p]
            for q in range(span):
                vals[q] = np.float64(win[a[p] + q, j, kj])
                moms[q] = vals[q] * (a[p] + q)
            padded = short_len if span <= SHORT_SPAN else long_len
            mass = numpy_sum(vals[:span], padded)
            moment = numpy_sum(moms[:span], padded)
            x = moment / mass if mass > 0 else 0.5 * (a[p] + b[p] - 1)
            x_run[p] = x
            outside_l = win[max(s0[p] - 1, 0), j, kj] if s0[p] > 0 else np.float32(0.0)
            outside_r = win[min(s1[p] + 1, n - 1), j, kj] if s1[p] < n - 1 else np.float32(0.0)
            x_l[p] = s0[p] - np.float64(edge_frac(win[s0[p], j, kj], outside_l, threshold))
            x_r[p] = s1[p] + np.float64(edge_frac(win[s1[p], j, kj], outside_r, threshold))
            # the stroke's slant: how far the centres of the runs one pixel row above and below move
            col = min(max(np.int64(np.rint(x)), 0), n - 1)
            above, below = np.nan, np.nan
            if kj - 1 >= 0 and mask[col, j, kj - 1]:
                above = 0.5 * (hs[j, kj - 1, col] + he[j, kj - 1, col])
            if kj + 1 < k and mask[col, j, kj + 1]:
                below = 0.5 * (hs[j, kj + 1, col] + he[j, kj + 1, col])
            if np.isfinite(above) and np.isfinite(below):
                slant = 0.5 * (below - above)
            elif np.isfinite(above):
                slant = x - above
            elif np.isfinite(below):
                slant = below - x
            else:
                slant = 0.0
            widen[p] = np.hypot(1.0, slant)
            width[p] = x_r[p] - x_l[p]
        # the pen's half-width as the single steep strokes show it, where there are enough of them
        single = np.empty(m, np.bool_)
        singles = 0
        for p in range(m):
            single[p] = (width[p] <= 2.0 * half_w[j] * widen[p] + 0.5) and (widen[p] < MAX_SINGLE_WIDEN)
            singles += single[p]
        hw_j = 0.5 * np.median(width[single]) if singles >= MIN_SINGLE_RUNS else half_w[j]
        two = np.empty(m, np.bool_)
        twos = 0
        for p in range(m):
            two[p] = width[p] > 2.0 * hw_j * widen[p] + 0.5
            twos += two[p]
        sx = np.empty(m + twos)
        sy = np.empty(m + twos)
        q = m
        for p in range(m):
            sx[p] = x_l[p] + hw_j if two[p] else x_run[p]
            sy[p] = np.float64(pk[p])
            if two[p]:
                sx[q] = x_r[p] - hw_j
                sy[q] = np.float64(pk[p])
                q += 1
        # keep the points on this row's own vertical runs (a column within one of x)
        own = np.zeros(sx.size, np.bool_)
        for p in range(sx.size):
            cols = np.int64(np.rint(sx[p]))
            for dc in (-1, 0, 1):
                c = min(max(cols + dc, 0), n - 1)
                if valid[c, j] and sy[p] >= top[c, j] - 1.0 and sy[p] <= bot[c, j] + 1.0:
                    own[p] = True
        sx, sy = sx[own], sy[own]
        # flat columns more than a pen width and a pixel from every steep point within one column are stray
        reach = thick[j] + 1.0
        by_x = np.argsort(sx, kind="mergesort")
        keep = np.empty(n, np.bool_)
        kept = 0
        first = 0  # the first point (by x) at or right of c - 1
        for c in range(n):
            keep[c] = use_col[c, j]
            while first < sx.size and sx[by_x[first]] < c - 1.0:
                first += 1
            if keep[c] and flat[c, j]:
                nearest = np.inf
                found = False
                p = first
                while p < sx.size and sx[by_x[p]] <= c + 1.0:
                    found = True
                    nearest = min(nearest, abs(sy[by_x[p]] - col_y[c, j]))
                    p += 1
                if found and nearest > reach:
                    keep[c] = False
            kept += keep[c]
        xs = np.empty(kept + sx.size)
        ys = np.empty(kept + sx.size)
        q = 0
        for c in range(n):
            if keep[c]:
                xs[q] = np.float64(c)
                ys[q] = col_y[c, j] + lo[j]
                q += 1
        for p in range(sx.size):
            xs[q] = sx[p]
            ys[q] = sy[p] + lo[j]
            q += 1
        order = np.argsort(xs, kind="mergesort")
        for q in range(xs.size):
            xs_out[filled + q] = xs[order[q]] + c0
            ys_out[filled + q] = ys[order[q]]
        filled += xs.size
        counts[j] = xs.size
    return xs_out[:filled], ys_out[:filled], counts


def steep_points(
    win: np.ndarray,
    mask: np.ndarray,
    steep: np.ndarray,
    run_start: np.ndarray,
    run_end: np.ndarray,
    top: np.ndarray,
    bot: np.ndarray,
    valid: np.ndarray,
    use_col: np.ndarray,
    flat: np.ndarray,
    col_y: np.ndarray,
    half_w: np.ndarray,
    thick: np.ndarray,
    lo: np.ndarray,
    c0: int,
    threshold: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per trace row, its centre-line points ``(x, y)`` in page pixels, sorted by x (stably): the kept columns'
    centres ``col_y`` and the steep strokes' points.

    ``win`` (N columns, R rows, K window px) is the rows' ink, ``mask`` its inked pixels, ``steep`` the pixels
    of tall columns' runs where the stroke is steep, ``run_start``/``run_end`` the first and last column of each
    pixel's horizontal run (:func:`derc.digitize.runs.run_ends` along the columns), ``top``/``bot`` (N, R) the
    window rows of each column's own vertical run (``valid`` where it has one), ``use_col`` the columns whose
    centre ``col_y`` counts, ``flat`` those of them that are not tall, ``half_w``/``thick`` (R,) each row's pen
    half-width and thickness, ``lo`` (R,) each window's top page row, ``c0`` the first column's page x, and
    ``threshold`` the ink level a pixel must exceed to count (sub-pixel ends are read where the ink crosses it).

    A horizontal run wider than a stroke (its slant allowed for) holds an up- and a downstroke that touch: two
    points, a stroke's half-width inside its sub-pixel ends. Points off the row's own vertical runs (where a
    run crosses into a neighbouring row's ink) are dropped, and so are flat columns further than the pen from
    every steep point within a column (a sliver of a thick stroke's anti-aliased edge).
    """
    i32, flag = (lambda a: np.ascontiguousarray(a, np.int32)), (lambda a: np.ascontiguousarray(a, np.bool_))
    xs, ys, counts = _steep_points(
        np.ascontiguousarray(win, np.float32),
        flag(mask),
        flag(steep),
        i32(np.moveaxis(run_start, 0, -1)),  # (R, K, N): each line's runs contiguous, as run_ends makes them
        i32(np.moveaxis(run_end, 0, -1)),
        i32(top),
        i32(bot),
        flag(valid),
        flag(use_col),
        flag(flat),
        np.ascontiguousarray(col_y, np.float64),
        np.ascontiguousarray(half_w, np.float64),
        np.ascontiguousarray(thick, np.float64),
        np.ascontiguousarray(lo, np.int64),
        int(c0),
        np.float32(threshold),
    )
    ends = np.cumsum(counts)
    return [(xs[e - c : e], ys[e - c : e]) for c, e in zip(counts, ends, strict=True)]
