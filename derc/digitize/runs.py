"""Ink runs: for every pixel, the first and last index of the run of ink along one axis that holds it
(:func:`run_ends`), or for one pixel per line (:func:`run_at`); a column's stroke mass (:func:`stroke_mass`); and the
middles of plateaus (:func:`plateau_middle`).

Compiled with numba (:mod:`derc.digitize.jit`: when imported, or loaded from numba's cache): one pass each way
per line instead of numpy's ``where`` / ``accumulate`` / ``flip`` over the whole (columns x rows x window)
array, which cost ~40 ms a call on an 896x1152 page (two calls per page). Where only one pixel per line is wanted
(the tracer's path, a column's darkest pixel), :func:`run_at` walks out from it instead of marking every pixel:
~0.4 ms of a 224x288 page's ~19 ms digitizing went to runs nobody read.
"""

from __future__ import annotations

import numpy as np

from derc.digitize.jit import kernel


@kernel("UniTuple(int32[:, ::1], 2)(boolean[:, ::1])")
def _line_run_ends(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    m, n = mask.shape
    start = np.empty((m, n), np.int32)
    end = np.empty((m, n), np.int32)
    for line in range(m):
        s = 0
        for i in range(n):
            if mask[line, i]:
                start[line, i] = s
            else:
                start[line, i] = i + 1
                s = i + 1
        e = n - 1
        for i in range(n - 1, -1, -1):
            if mask[line, i]:
                end[line, i] = e
            else:
                end[line, i] = i - 1
                e = i - 1
    return start, end


def run_ends(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) int32 arrays shaped like ``mask``: where ``mask`` is set, the first and last index along
    ``axis`` of its run of set pixels; elsewhere index + 1 and index - 1 (so end < start off the ink)."""
    mask = np.asarray(mask, dtype=np.bool_)
    moved = np.moveaxis(mask, axis, -1)
    if moved.size == 0:
        empty = np.zeros(mask.shape, np.int32)
        return empty, empty.copy()
    lines = np.ascontiguousarray(moved).reshape(-1, moved.shape[-1])
    start, end = _line_run_ends(lines)
    shape = moved.shape
    return np.moveaxis(start.reshape(shape), -1, axis), np.moveaxis(end.reshape(shape), -1, axis)


@kernel("int64[::1](float32[:, ::1], int64[:, ::1], int64[::1], float32)")
def _band_run_lengths(
    image: np.ndarray, bands: np.ndarray, cols: np.ndarray, threshold: float
) -> np.ndarray:  # pragma: no cover
    total = 0
    for b in range(bands.shape[0]):
        total += (bands[b, 1] - bands[b, 0] + 1) // 2 * cols.size
    out = np.empty(total, np.int64)
    k = 0
    for b in range(bands.shape[0]):
        for x in cols:
            length = 0
            for y in range(bands[b, 0], bands[b, 1]):
                if image[y, x] > threshold:
                    length += 1
                elif length:
                    out[k] = length
                    k += 1
                    length = 0
            if length:
                out[k] = length
                k += 1
    return out[:k]


def band_run_lengths(image: np.ndarray, bands: np.ndarray, cols: np.ndarray, threshold: float) -> np.ndarray:
    """The lengths of the vertical runs of pixels above ``threshold`` in columns ``cols`` of ``image`` within each
    band of rows [lo, hi) of ``bands`` (B, 2): every run once, cut at the band's edges (a trace's pen width)."""
    image = np.ascontiguousarray(image, dtype=np.float32)
    bands = np.ascontiguousarray(np.reshape(bands, (-1, 2)), dtype=np.int64)
    lo, hi = bands[:, 0], bands[:, 1]
    if bands.size and (lo.min() < 0 or hi.max() > image.shape[0] or (hi < lo).any()):
        raise ValueError(f"bands must lie within the image's {image.shape[0]} rows, got {bands.tolist()}")
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    if cols.size and (cols.min() < 0 or cols.max() >= image.shape[1]):
        raise ValueError(f"columns must lie within the image's {image.shape[1]} columns")
    return _band_run_lengths(image, bands, cols, np.float32(threshold))


@kernel("UniTuple(int32[::1], 2)(boolean[:, :], int64[::1])")
def _line_runs_at(lines: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    m, n = lines.shape
    start = np.empty(m, np.int32)
    end = np.empty(m, np.int32)
    for line in range(m):
        p = at[line]
        if not lines[line, p]:
            start[line] = p + 1
            end[line] = p - 1
            continue
        s = p
        while s > 0 and lines[line, s - 1]:
            s -= 1
        e = p
        while e < n - 1 and lines[line, e + 1]:
            e += 1
        start[line] = s
        end[line] = e
    return start, end


def run_at(mask: np.ndarray, index: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """``run_ends(mask, axis)`` read at ``index`` along ``axis`` only: (start, end) int32 arrays shaped like
    ``index``, which has ``mask``'s shape without ``axis`` (``np.take_along_axis`` of both ends, without them)."""
    mask = np.asarray(mask, dtype=np.bool_)
    moved = np.moveaxis(mask, axis, -1)
    index = np.asarray(index)
    if index.shape != moved.shape[:-1]:
        raise ValueError(f"index shaped {index.shape}, expected {moved.shape[:-1]}")
    n = moved.shape[-1]
    if index.size and (index.min() < 0 or index.max() >= n):
        raise IndexError(f"index out of range for a run axis of {n}")
    if index.size == 0:
        empty = np.zeros(index.shape, np.int32)
        return empty, empty.copy()
    start, end = _line_runs_at(moved.reshape(-1, n), np.ascontiguousarray(index, dtype=np.int64).ravel())
    return start.reshape(index.shape), end.reshape(index.shape)


@kernel("boolean[:, ::1](boolean[:, :], int64[:, :])")
def _plateau_middle(flag: np.ndarray, value: np.ndarray) -> np.ndarray:  # pragma: no cover
    n, m = flag.shape
    out = np.zeros((n, m), np.bool_)
    for j in range(m):
        first = -1  # where the current plateau started (-1: none open)
        for i in range(n + 1):
            open_on = first >= 0 and i < n and flag[i, j] and value[i, j] == value[i - 1, j]
            if first >= 0 and not open_on:  # the plateau first..i-1 ends: keep its middle
                out[first + (i - 1 - first) // 2, j] = True
                first = -1
            if first < 0 and i < n and flag[i, j]:
                first = i
    return out


def plateau_middle(flag: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Of consecutive flagged entries (along axis 0 of (N, M) arrays) with equal ``value``, keep only the middle
    one (the earlier of two middles). A compiled pass over each column (numpy's per-column ``nonzero`` / ``diff``
    calls cost ~0.6 ms of a 224x288 page's tracing, four calls a page)."""
    flag = np.asarray(flag, dtype=np.bool_)
    value = np.asarray(value)
    if flag.ndim != 2 or value.shape != flag.shape:
        raise ValueError(f"expected (N, M) flags and values alike, got {flag.shape}, {value.shape}")
    return _plateau_middle(flag, value.astype(np.int64, copy=False))


@kernel("float32[::1](float32[:, :], float32)")
def _stroke_mass(band: np.ndarray, floor: float) -> np.ndarray:  # pragma: no cover
    h, m = band.shape
    out = np.zeros(m, np.float32)
    for j in range(m):
        top = 0
        for i in range(1, h):
            if band[i, j] > band[top, j]:
                top = i
        if not band[top, j] > floor:
            continue
        a = top
        while a > 0 and band[a - 1, j] > floor:
            a -= 1
        b = top
        while b < h - 1 and band[b + 1, j] > floor:
            b += 1
        total = np.float32(0.0)
        for i in range(a, b + 1):
            total += band[i, j]
        out[j] = total
    return out


def stroke_mass(band: np.ndarray, floor: float) -> np.ndarray:
    """Per column of a float32 (H, M) ``band``: the sum of its values over the run of pixels above ``floor``
    that holds the column's darkest (first maximal) pixel, 0 where that pixel is not above it; float32, summed
    top-down, so the same values as numpy's ``np.where(in_run, band, 0.0).sum(axis=0)`` over that run (with the
    run from ``run_at(band > floor, band.argmax(axis=0), axis=0)``, compared in float32 as numpy does)."""
    band = np.asarray(band)
    if band.dtype != np.float32 or band.ndim != 2 or band.shape[0] == 0:
        raise ValueError(f"expected a non-empty (H, M) float32 band, got {band.dtype} {band.shape}")
    return _stroke_mass(band, np.float32(floor))
