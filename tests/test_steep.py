"""The compiled steep-stroke points and runs equal, bit for bit, the numpy formulations they replaced (kept here as
the references), on the tracer's real inputs from rendered pages."""

from __future__ import annotations

import numpy as np
import pytest

import derc.digitize as digitize_module
from derc.digitize import INK_THRESHOLD, _edge_frac, _span_sums, digitize
from derc.digitize.evaluation import render_ink
from derc.digitize.jit import numpy_sum
from derc.digitize.runs import run_ends
from derc.digitize.steep import MAX_SINGLE_WIDEN, MIN_SINGLE_RUNS
from derc.labels import LEADS
from derc.synth import sample_labels, synthesize

FS = 500.0


def _stroke_slant(mask, hs, he, j, k, x):
    n, _, depth = mask.shape
    col = np.clip(np.rint(x).astype(np.int64), 0, n - 1)
    centres = []
    for dk in (-1, 1):
        kk = np.clip(k + dk, 0, depth - 1)
        inked = mask[col, j, kk] & (k + dk >= 0) & (k + dk < depth)
        centres.append(np.where(inked, 0.5 * (hs[col, j, kk] + he[col, j, kk]), np.nan))
    above, below = centres
    slant = np.where(np.isfinite(above) & np.isfinite(below), 0.5 * (below - above), np.nan)
    slant = np.where(np.isnan(slant), x - above, slant)
    slant = np.where(np.isnan(slant), below - x, slant)
    return np.nan_to_num(slant, nan=0.0)


def _on_own_runs(sx, sy, top, bot, valid):
    cols = np.rint(sx).astype(np.int64)
    ok = np.zeros(sx.shape, dtype=bool)
    for dc in (-1, 0, 1):
        c = np.clip(cols + dc, 0, top.size - 1)
        ok |= valid[c] & (sy >= top[c] - 1.0) & (sy <= bot[c] + 1.0)
    return ok


def _stray_columns(sx, sy, col_y, flat, reach):
    stray = np.zeros_like(flat)
    for c in np.nonzero(flat)[0]:
        near = (sx >= c - 1.0) & (sx <= c + 1.0)
        if near.any():
            stray[c] = np.abs(sy[near] - col_y[c]).min() > reach
    return stray


def traced_call(monkeypatch: pytest.MonkeyPatch, name: str, layout: str, shape, seed: int) -> tuple[tuple, object]:
    """(arguments, result) of the tracer's one call to the compiled ``name`` while it digitizes a rendered page."""
    rng = np.random.default_rng(seed)
    sig = synthesize(sample_labels(rng), rng=rng, fs=int(FS), noise=False).astype(np.float64)
    page = render_ink(sig, FS, layout, rng=np.random.default_rng(seed), shape=shape)
    seen = []
    compiled = getattr(digitize_module, name)

    def recording(*args):
        got = compiled(*args)
        seen.append((args, got))
        return got

    monkeypatch.setattr(digitize_module, name, recording)
    digitize(page.ink, fs=FS, num_samples=5000, leads=LEADS)
    assert len(seen) == 1
    return seen[0]


def numpy_steep_points(
    win, mask, steep, hs, he, ti, bi, valid, use_col, flat, col_y, half_w, thick, lo, c0, threshold
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The tracer's per-row loop as it was written in numpy (2026-12-07), before it was compiled."""
    assert threshold == INK_THRESHOLD
    n, r, hw = win.shape
    flat_win = win.ravel()
    points = []
    for j in range(r):
        ci, kj = np.nonzero(steep[:, j, :])
        _, first = np.unique(kj * (n + 1) + hs[ci, j, kj], return_index=True)
        ci, kj = ci[first], kj[first]
        s0, s1 = hs[ci, j, kj], he[ci, j, kj]
        a, b = np.maximum(s0 - 1, 0), np.minimum(s1 + 2, n)
        mass, moment = _span_sums(flat_win, j * hw + kj, r * hw, a, b)
        x_run = np.where(mass > 0, moment / np.where(mass > 0, mass, 1.0), 0.5 * (a + b - 1))
        x_l = s0 - _edge_frac(win[s0, j, kj], win[np.maximum(s0 - 1, 0), j, kj] * (s0 > 0))
        x_r = s1 + _edge_frac(win[s1, j, kj], win[np.minimum(s1 + 1, n - 1), j, kj] * (s1 < n - 1))
        widen = np.hypot(1.0, _stroke_slant(mask, hs, he, j, kj, x_run))
        width = x_r - x_l
        single = (width <= 2.0 * half_w[j] * widen + 0.5) & (widen < MAX_SINGLE_WIDEN)
        hw_j = 0.5 * float(np.median(width[single])) if single.sum() >= MIN_SINGLE_RUNS else half_w[j]
        two = width > 2.0 * hw_j * widen + 0.5
        sx = np.concatenate([np.where(two, x_l + hw_j, x_run), x_r[two] - hw_j])
        sy = np.concatenate([kj, kj[two]]).astype(np.float64)
        own = _on_own_runs(sx, sy, ti[:, j], bi[:, j], valid[:, j])
        sx, sy = sx[own], sy[own]
        keep_col = use_col[:, j] & ~_stray_columns(sx, sy, col_y[:, j], flat[:, j], thick[j] + 1.0)
        x_col = np.nonzero(keep_col)[0].astype(np.float64)
        xs = np.concatenate([x_col, sx])
        ys = np.concatenate([col_y[keep_col, j], sy]) + lo[j]
        order = np.argsort(xs, kind="stable")
        points.append((xs[order] + c0, ys[order]))
    return points


@pytest.mark.parametrize(
    ("layout", "shape", "seed"),
    [("3x4", None, 0), ("12x1", (896, 1152), 1), ("6x2", (224, 288), 2), ("3x4", (224, 288), 3)],
)
def test_compiled_points_equal_the_numpy_ones(monkeypatch: pytest.MonkeyPatch, layout, shape, seed) -> None:
    """On the tracer's inputs of a rendered page (200 dpi pages hold touching up- and downstrokes, 896x1152 12x1
    pages rows whose QRS complexes touch, 224x288 pages `small`'s ink maps), the same points to the bit."""
    args, got = traced_call(monkeypatch, "steep_points", layout, shape, seed)
    expected = numpy_steep_points(*args)
    assert len(got) == len(expected) == args[0].shape[1]
    assert sum(xs.size for xs, _ in got) > args[0].shape[0]  # steep points beside the columns' centres
    for (xs, ys), (xe, ye) in zip(got, expected, strict=True):
        assert np.array_equal(xs, xe) and np.array_equal(ys, ye)


def numpy_steep_runs(win, mask, ti, bi, tall, radius, thick):
    """The steep strokes' runs as the tracer computed them in numpy (2026-12-07), before they were compiled."""
    hw = win.shape[2]
    left_ink = np.concatenate([win[:1], win[:-1]], axis=0)
    right_ink = np.concatenate([win[1:], win[-1:]], axis=0)
    valley = (win < left_ink - 0.1) & (win < right_ink - 0.1)
    hs, he = run_ends(mask & ~valley, axis=0)
    kk = np.arange(hw)[None, None, :]
    inside = (kk >= ti[:, :, None] + radius[None, :, None] + 0.5) & (kk <= bi[:, :, None] - radius[None, :, None] - 0.5)
    steep = mask & ~valley & tall[:, :, None] & inside & ((he - hs + 1) <= (3.0 * thick + 2.0)[None, :, None])
    return hs, he, steep


@pytest.mark.parametrize(
    ("layout", "shape", "seed"), [("12x1", (896, 1152), 1), ("6x2", (224, 288), 2), ("3x4", (448, 576), 4)]
)
def test_compiled_runs_equal_the_numpy_ones(monkeypatch: pytest.MonkeyPatch, layout, shape, seed) -> None:
    """The horizontal runs and steep pixels of a rendered page's rows: the same arrays as numpy's."""
    args, got = traced_call(monkeypatch, "steep_runs", layout, shape, seed)
    expected = numpy_steep_runs(*args)
    assert expected[2].sum() > 100  # steep pixels to compare
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype and np.array_equal(g, e)


def test_padded_sums_are_numpys() -> None:
    """The runs' ink sums: numpy's sum over a zero-padded batch row (pairwise, 8 partial sums from 8 on)."""
    rng = np.random.default_rng(0)
    for length in range(1, 40):
        for size in {1, max(1, length // 2), length}:
            values = rng.random((50, size)) * rng.random((50, 1)) * 10
            padded = np.zeros((50, length))
            padded[:, :size] = values
            expected = padded.sum(axis=1)
            got = np.array([numpy_sum(np.ascontiguousarray(v), length) for v in values])
            assert np.array_equal(got, expected), (length, size)
