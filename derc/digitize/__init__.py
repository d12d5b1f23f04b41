"""Ink-probability page image -> 12-lead signal in mV (the Challenge's digitization task).

Pipeline: estimate and undo a small rotation, find the rows' baselines in the ink's row profile and
fit them to a layout from :mod:`derc.render.layout`, anchor the x axis on the traces' ends (and the
calibration pulse), trace every row column by column following continuity, convert px to mV and
seconds, and resample each panel into its lead's time window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from derc.render.layout import (
    CALIBRATION_WIDTH_MM,
    GAIN_MM_PER_MV,
    LAYOUTS,
    PAGE_HEIGHT_MM,
    PAGE_WIDTH_MM,
    PAPER_SPEED_MM_PER_S,
    TRACE_LEFT_MM,
    TRACE_WIDTH_MM,
    PageLayout,
    page_layout,
)

INK_THRESHOLD = 0.5
CALIBRATION_LEFT_MM = TRACE_LEFT_MM - CALIBRATION_WIDTH_MM - 2.0  # pulse: flat 1 mm, up 5 mm, flat 1 mm
TRACE_RIGHT_MM = TRACE_LEFT_MM + TRACE_WIDTH_MM


@dataclass(frozen=True)
class PageFit:
    """Where the layout sits in the (deskewed) image: ``px = a * mm + b`` on each axis."""

    layout: str
    ay: float
    by: float
    ax: float
    bx: float
    row_baselines_px: tuple[float, ...]  # refined 0-mV line of each layout row
    angle_deg: float


def _as_ink(ink: np.ndarray) -> np.ndarray:
    arr = np.asarray(ink, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    if arr.ndim != 2 or min(arr.shape) < 16:
        raise ValueError(f"expected an HxW ink map, got shape {np.shape(ink)}")
    if arr.max(initial=0.0) > 1.5:  # 0..255 input
        arr = arr / 255.0
    return np.clip(np.nan_to_num(arr), 0.0, 1.0)


def estimate_rotation(ink: np.ndarray, max_deg: float = 5.0) -> float:
    """Skew angle in degrees (traces run down to the right for positive angles), by projection-profile search.

    The sharpness (sum of squares) of the row profile of the sheared ink peaks when the traces' flat
    segments are horizontal; bins are split linearly so that sub-pixel tilts still count.
    """
    ink = _as_ink(ink)
    scale = min(1.0, 1200.0 / ink.shape[1])
    small = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else ink
    ys, xs = np.nonzero(small > 0.25)
    if ys.size < 50:
        return 0.0
    w = small[ys, xs].astype(np.float64)
    xc = xs - small.shape[1] / 2.0
    h = small.shape[0]

    def sharpness(angles: np.ndarray) -> np.ndarray:
        out = np.empty(angles.size)
        for i, a in enumerate(angles):
            yy = np.clip(ys - xc * np.tan(np.deg2rad(a)) + h, 0, 3 * h - 2)
            base = np.floor(yy)
            frac = yy - base
            base = base.astype(np.int64)
            hist = np.bincount(base, weights=w * (1 - frac), minlength=3 * h)
            hist += np.bincount(base + 1, weights=w * frac, minlength=3 * h)
            out[i] = np.dot(hist, hist)
        return out

    coarse = np.arange(-max_deg, max_deg + 1e-9, 0.25)
    best = coarse[np.argmax(sharpness(coarse))]
    fine = np.arange(best - 0.25, best + 0.25 + 1e-9, 0.025)
    return float(fine[np.argmax(sharpness(fine))])


def deskew(ink: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate the ink about the image centre so that traces skewed by ``angle_deg`` become horizontal."""
    if abs(angle_deg) < 0.02:
        return ink
    h, w = ink.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    return cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)


def _row_peaks(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel y positions and heights of the horizontal-ink peaks (trace baselines)."""
    h, w = ink.shape
    ppmm_y = h / PAGE_HEIGHT_MM
    x0, x1 = int(0.1 * w), int(0.95 * w)
    profile = gaussian_filter1d(ink[:, x0:x1].sum(axis=1).astype(np.float64), max(0.5, 0.5 * ppmm_y))
    if profile.max() <= 0:
        return np.zeros(0), np.zeros(0)
    peaks, _ = find_peaks(profile, distance=max(2, int(7.0 * ppmm_y)))
    if peaks.size == 0:
        return np.zeros(0), np.zeros(0)
    heights = profile[peaks]
    top = np.sort(heights)[-4:]
    keep = heights >= 0.3 * np.median(top)
    peaks, heights = peaks[keep], heights[keep]
    # parabolic sub-pixel refinement
    left = profile[np.clip(peaks - 1, 0, h - 1)]
    right = profile[np.clip(peaks + 1, 0, h - 1)]
    denom = left - 2 * heights + right
    delta = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    return peaks + np.clip(delta, -0.5, 0.5), heights


def _fit_layout_rows(peaks: np.ndarray, name: str, h: int) -> tuple[float, float, float, np.ndarray]:
    """Best ``y_px = a*y_mm + b`` for layout ``name``: (F1 score, a, b, matched peak per row or NaN)."""
    base = np.asarray(page_layout(name).row_baselines_mm())
    ppmm = h / PAGE_HEIGHT_MM
    tol = 2.5 * ppmm
    if peaks.size == 0:
        return 0.0, ppmm, 0.0, np.full(base.size, np.nan)
    a = ppmm * np.linspace(0.88, 1.12, 25)
    b = (peaks[None, :, None] - a[:, None, None] * base[None, None, :]).reshape(a.size, -1)  # (na, n*nL)
    pred = a[:, None, None] * base[None, None, :] + b[:, :, None]  # (na, nb, nL)
    dist = np.abs(pred[..., None] - peaks).min(axis=-1)  # (na, nb, nL)
    inside = (pred > 0) & (pred < h)
    matched = ((dist < tol) & inside).sum(axis=-1)
    resid = np.where(dist < tol, dist, tol).sum(axis=-1)
    f1 = 2.0 * matched / (base.size + peaks.size)
    order = np.lexsort((resid.ravel(), -f1.ravel()))[0]
    ia, ib = np.unravel_index(order, f1.shape)
    best_a, best_b = float(a[ia]), float(b[ia, ib])
    pred_rows = best_a * base + best_b
    nearest = peaks[np.abs(pred_rows[:, None] - peaks[None, :]).argmin(axis=1)]
    rows = np.where(np.abs(nearest - pred_rows) < tol, nearest, np.nan)
    ok = np.isfinite(rows)
    if ok.sum() >= 2:
        best_a, best_b = (float(v) for v in np.polyfit(base[ok], rows[ok], 1))
    elif ok.sum() == 1:
        best_b = float(rows[ok][0] - best_a * base[ok][0])
    return float(f1[ia, ib]), best_a, best_b, rows


def detect_layout(ink: np.ndarray) -> str:
    """Name of the layout (``3x4``, ``6x2`` or ``12x1``) whose row baselines best explain the ink's rows."""
    ink = _as_ink(ink)
    return _fit_page(deskew(ink, estimate_rotation(ink)), None, 0.0).layout


def _run_ends(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, first and last index of the ink run along ``axis`` containing it."""
    n = mask.shape[axis]
    shape = [1] * mask.ndim
    shape[axis] = n
    idx = np.arange(n, dtype=np.int32).reshape(shape)
    start = np.maximum.accumulate(np.where(mask, 0, idx + 1), axis=axis)
    rev = np.flip(np.where(mask, n, idx - 1), axis=axis)
    end = np.flip(np.minimum.accumulate(rev, axis=axis), axis=axis)
    return start, np.minimum(end, n - 1)


def _pen_width(ink: np.ndarray, rows_px: np.ndarray, half: int) -> float:
    """Median vertical ink-run length near the row baselines (mostly flat trace, so the pen's width in px)."""
    h, w = ink.shape
    cols = np.linspace(0.1 * w, 0.95 * w, 200).astype(np.int64)
    lengths = []
    for y in rows_px:
        lo, hi = int(max(0, y - half)), int(min(h, y + half + 1))
        if hi - lo < 2:
            continue
        m = ink[lo:hi, cols] > INK_THRESHOLD
        start, end = _run_ends(m, axis=0)
        first = m & (start == np.arange(hi - lo)[:, None])  # one entry per run
        lengths.append((end - start + 1)[first])
    run = np.concatenate(lengths) if lengths else np.zeros(0)
    return float(np.median(run)) if run.size else 1.0


def _fit_x(ink: np.ndarray, rows_px: np.ndarray, ay: float, pitch_mm: float) -> tuple[float, float]:
    """``x_px = ax * x_mm + bx`` from the rows' first and last ink (the calibration pulse or trace start, 10 s end)."""
    h, w = ink.shape
    ax0 = w / PAGE_WIDTH_MM
    half = max(1, int(0.4 * pitch_mm * ay))
    min_run = max(2, int(2.0 * ax0))
    lefts, rights, pulse = [], [], []
    for y in rows_px:
        lo, hi = int(max(0, y - half)), int(min(h, y + half + 1))
        if hi - lo < 2:
            continue
        has = ink[lo:hi].max(axis=0) > INK_THRESHOLD
        padded = np.concatenate(([False], has, [False])).astype(np.int8)
        d = np.diff(padded)
        starts, ends = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0] - 1
        long = (ends - starts + 1) >= min_run
        if not long.any():
            continue
        left, right = int(starts[long][0]), int(ends[long][-1])
        lefts.append(left)
        rights.append(right)
        # a calibration pulse rises ~10 mm right after the left end
        top = int(max(0, y - 11.0 * ay))
        seg = ink[top : int(min(h, y + 1)), left : left + max(2, int(3.0 * ax0))] > INK_THRESHOLD
        pulse.append(seg.size > 0 and seg.sum(axis=0).max() >= 6.0 * ay)
    if len(rights) == 0:
        return ax0, 0.0
    left_mm = CALIBRATION_LEFT_MM if np.mean(pulse) > 0.5 else TRACE_LEFT_MM
    radius = max(0.0, (_pen_width(ink, rows_px, half) - 2.0) / 2.0)  # ends include the pen cap (less AA fringe)
    left_px, right_px = float(np.median(lefts)) + radius, float(np.median(rights)) - radius
    ax = (right_px - left_px) / (TRACE_RIGHT_MM - left_mm)
    ax_prior = ax0 * ay / (h / PAGE_HEIGHT_MM)  # same relative scale as the rows
    if abs(ax / ax_prior - 1.0) < 0.01:  # ends are blurry to a px or two: trust the row scale
        ax = ax_prior
    bx = 0.5 * (right_px + left_px - ax * (TRACE_RIGHT_MM + left_mm))
    if not (0.85 * ax0 < ax < 1.15 * ax0) or abs(bx) > 25.0 * ax0:
        return ax0, 0.0
    return float(ax), float(bx)


def _fit_page(ink: np.ndarray, layout: str | None, angle: float) -> PageFit:
    h, _ = ink.shape
    peaks, _ = _row_peaks(ink)
    names = LAYOUTS if layout is None else (layout,)
    fits = {name: _fit_layout_rows(peaks, name, h) for name in names}
    name = max(names, key=lambda n: (fits[n][0], -abs(fits[n][1] / (h / PAGE_HEIGHT_MM) - 1.0)))
    _, ay, by, rows = fits[name]
    lay = page_layout(name)
    base = np.asarray(lay.row_baselines_mm())
    rows_px = np.where(np.isfinite(rows), rows, ay * base + by)
    ax, bx = _fit_x(ink, rows_px, ay, lay.row_pitch_mm)
    return PageFit(name, ay, by, ax, bx, tuple(float(v) for v in rows_px), angle)


def _trace_rows(
    ink: np.ndarray, rows_px: np.ndarray, pitch_px: float, c0: int, c1: int, resets: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Follow each row's trace from column c0 to c1 (exclusive); (x, y) centre-line points per row, sorted by x."""
    h, _ = ink.shape
    half = max(2, round(0.95 * pitch_px))
    hw = 2 * half + 1
    lo = np.rint(rows_px).astype(np.int64) - half
    yw = lo[:, None] + np.arange(hw)[None, :]  # (R, hw) image rows of each window
    outside = (yw < 0) | (yw >= h)
    win = ink[np.clip(yw, 0, h - 1)][:, :, c0:c1]  # (R, hw, N)
    win = np.where(outside[:, :, None], 0.0, win)
    win = np.ascontiguousarray(np.transpose(win, (2, 0, 1)))  # (N, R, hw)
    mask = win > INK_THRESHOLD
    start, end = _run_ends(mask, axis=2)
    wsum = np.cumsum(np.where(mask, win, 0.0), axis=2, dtype=np.float64)
    ysum = np.cumsum(np.where(mask, win * np.arange(hw), 0.0), axis=2, dtype=np.float64)

    n, r = mask.shape[0], mask.shape[1]
    k = np.arange(hw, dtype=np.float64)[None, :]
    centre = float(half)
    tol = max(1.5, 0.6 * pitch_px / 14.5)  # ~0.6 mm of slack between consecutive runs
    top = np.full((n, r), -1, dtype=np.int64)
    bot = np.full((n, r), -1, dtype=np.int64)
    prev_t = np.full(r, centre)
    prev_b = np.full(r, centre)
    gap = np.zeros(r)
    rr = np.arange(r)
    for i in range(n):
        if resets[i]:
            prev_t[:] = centre - tol
            prev_b[:] = centre + tol
            gap[:] = 8.0
        m = mask[i]
        st, en = start[i], end[i]
        # the trace continues in every run touching the previous column's run (steep strokes may split)
        over = m & (st <= (prev_b + tol)[:, None]) & (en >= (prev_t - tol)[:, None])
        has_over = over.any(axis=1)
        top_o = over.argmax(axis=1)
        bot_o = hw - 1 - over[:, ::-1].argmax(axis=1)
        # otherwise (after a gap) the nearest run, within a tolerance that grows with the gap
        dist = np.where(m, np.maximum(np.maximum(prev_t[:, None] - k, k - prev_b[:, None]), 0.0), np.inf)
        j = dist.argmin(axis=1)
        best = dist[rr, j]
        near = np.isfinite(best) & (best <= tol * (1.0 + 2.0 * gap))
        ok = has_over | near
        s = np.where(has_over, top_o, st[rr, j])
        e = np.where(has_over, bot_o, en[rr, j])
        top[i] = np.where(ok, s, -1)
        bot[i] = np.where(ok, e, -1)
        prev_t = np.where(ok, s, prev_t)
        prev_b = np.where(ok, e, prev_b)
        gap = np.where(ok, 0.0, gap + 1.0)
    valid = top >= 0
    ti, bi = np.clip(top, 0, hw - 1), np.clip(bot, 0, hw - 1)
    ni, ri = np.meshgrid(np.arange(n), rr, indexing="ij")
    w_tot = wsum[ni, ri, bi] - np.where(ti > 0, wsum[ni, ri, np.maximum(ti - 1, 0)], 0.0)
    y_tot = ysum[ni, ri, bi] - np.where(ti > 0, ysum[ni, ri, np.maximum(ti - 1, 0)], 0.0)
    cen = np.where(w_tot > 0, y_tot / np.where(w_tot > 0, w_tot, 1.0), (ti + bi) / 2.0)
    extent = np.where(valid, bi - ti + 1, 0)
    thick = np.array([np.median(extent[valid[:, j], j]) if valid[:, j].any() else 1.0 for j in rr])
    radius = np.maximum(0.0, (thick - 1.0) / 2.0)
    tall = valid & (extent > thick + 1.0)
    # steep strokes: the centre line's x at each pixel row is the middle of the horizontal ink run
    hs, he = _run_ends(mask, axis=0)
    kk = np.arange(hw)[None, None, :]
    inside = (kk >= ti[:, :, None] + radius[None, :, None] + 0.5) & (kk <= bi[:, :, None] - radius[None, :, None] - 0.5)
    steep = mask & tall[:, :, None] & inside & ((he - hs + 1) <= (thick + 1.5)[None, :, None])
    # extreme columns of tall runs: the apex (or trough) is the run's end, pulled in by the pen radius
    up = np.full_like(ti, hw)
    up[:, :] = np.where(valid, ti, hw)
    dn = np.where(valid, bi, -1)
    apex = tall & (up <= np.roll(up, 1, 0)) & (up <= np.roll(up, -1, 0))
    trough = tall & (dn >= np.roll(dn, 1, 0)) & (dn >= np.roll(dn, -1, 0))
    col_y = np.where(apex, ti + radius, np.where(trough, bi - radius, cen))
    use_col = valid & (~tall | apex | trough)
    points = []
    for j in rr:
        ci, kj = np.nonzero(steep[:, j, :])
        xs = np.concatenate([np.nonzero(use_col[:, j])[0].astype(np.float64), 0.5 * (hs[ci, j, kj] + he[ci, j, kj])])
        ys = np.concatenate([col_y[use_col[:, j], j], kj.astype(np.float64)]) + lo[j]
        order = np.argsort(xs, kind="stable")
        points.append((xs[order] + c0, ys[order]))
    return points


def _pulse_baselines(ink: np.ndarray, rows_px: np.ndarray, fit: PageFit) -> np.ndarray:
    """Per row, the y of the calibration pulse's flat feet (drawn at exactly 0 mV), or NaN when absent."""
    h, _ = ink.shape
    feet_mm = np.concatenate(
        [np.linspace(0.25, 0.75, 3) + CALIBRATION_LEFT_MM, np.linspace(0.25, 0.75, 3) + TRACE_LEFT_MM - 1.0]
    )
    cols = np.unique(np.rint(fit.ax * feet_mm + fit.bx).astype(np.int64))
    cols = cols[(cols >= 0) & (cols < ink.shape[1])]
    half = max(1, round(1.5 * fit.ay))
    out = np.full(rows_px.size, np.nan)
    for r, y in enumerate(rows_px):
        lo, hi = int(y) - half, int(y) + half + 1
        if cols.size < 2 or lo < 0 or hi > h:
            continue
        w = np.where(ink[lo:hi, cols] > INK_THRESHOLD, ink[lo:hi, cols], 0.0)
        mass = w.sum(axis=0)
        if (mass > 0).sum() < max(2, cols.size // 2):
            continue
        centres = (w * np.arange(lo, hi)[:, None]).sum(axis=0)[mass > 0] / mass[mass > 0]
        out[r] = float(np.median(centres))
    return out


def _mode(values: np.ndarray) -> float:
    """Isoelectric level: the densest value (1-px bins, lightly smoothed), refined by a local median."""
    lo = np.floor(values.min())
    hist = np.bincount((values - lo).astype(np.int64))
    peak = int(np.argmax(gaussian_filter1d(hist.astype(np.float64), 1.0))) + lo
    near = values[np.abs(values - peak - 0.5) <= 1.5]
    return float(np.median(near)) if near.size else float(peak)


def _lead_index(leads: Sequence[str]) -> dict[str, int]:
    return {str(name).strip().lower(): i for i, name in enumerate(leads)}


def digitize(
    ink: np.ndarray,
    *,
    fs: float,
    num_samples: int,
    leads: Sequence[str],
    layout: str | None = None,
    fill: float = 0.0,
) -> np.ndarray:
    """Recover the ECG from an ink-probability page (1 = waveform ink), as ``(num_samples, len(leads))`` float32 mV.

    ``leads`` gives the output column order (names matched case-insensitively); the image may have any size
    and a small rotation. ``layout`` (``3x4``, ``6x2``, ``12x1``) is detected when None. Each panel is
    placed in its lead's time window, relative to its isoelectric level (the mode of the trace). Lead II is
    taken from the 10 s rhythm strip when the layout has one. Samples outside the shown window(s), beyond
    10 s, of leads unknown to the layout, or of panels where no trace was found are ``fill`` (0.0; pass
    ``np.nan`` to leave them out of the Challenge's SNR instead of counting them as zero).
    """
    if num_samples < 0 or fs <= 0:
        raise ValueError("need fs > 0 and num_samples >= 0")
    out = np.full((num_samples, len(leads)), fill, dtype=np.float32)
    if num_samples == 0 or len(leads) == 0:
        return out
    ink = _as_ink(ink)
    angle = estimate_rotation(ink)
    ink = deskew(ink, angle)
    fit = _fit_page(ink, layout, angle)
    lay: PageLayout = page_layout(fit.layout)
    rows_px = np.asarray(fit.row_baselines_px)
    w = ink.shape[1]
    c0 = int(max(0, np.floor(fit.ax * TRACE_LEFT_MM + fit.bx)))
    c1 = int(min(w, np.ceil(fit.ax * TRACE_RIGHT_MM + fit.bx) + 1))
    if c1 - c0 < 4:
        return out
    resets = np.zeros(c1 - c0, dtype=bool)
    for p in lay.panels:
        resets[int(np.clip(round(fit.ax * p.x_mm + fit.bx) - c0, 0, c1 - c0 - 1))] = True

    index = _lead_index(leads)
    rhythm = {p.lead.lower() for p in lay.panels if p.t_end - p.t_start >= 10.0 - 1e-6 and len(lay.panels) > 12}
    pen = _pen_width(ink, rows_px, max(1, int(0.4 * lay.row_pitch_mm * fit.ay)))
    points = _trace_rows(ink, rows_px, lay.row_pitch_mm * fit.ay, c0, c1, resets)
    mm_per_px_y = 1.0 / (fit.ay * GAIN_MM_PER_MV)
    edge = 1.0 + 0.5 * pen
    pulse = _pulse_baselines(ink, rows_px, fit)
    for p in lay.panels:
        col = index.get(p.lead.lower())
        if col is None:
            continue
        if p.lead.lower() in rhythm and p.t_end - p.t_start < 10.0 - 1e-6:
            continue  # the rhythm strip supplies this lead
        xs, ys = points[p.row]
        x_lo, x_hi = fit.ax * p.x_mm + fit.bx, fit.ax * (p.x_mm + p.width_mm) + fit.bx
        # where two panels meet, both pens overlap for about a pen width: keep clear of it
        inner_lo = x_lo + (edge if p.x_mm > TRACE_LEFT_MM + 1e-6 else -0.5)
        inner_hi = x_hi - (edge if p.x_mm + p.width_mm < TRACE_RIGHT_MM - 1e-6 else -0.5)
        sel = (xs >= inner_lo) & (xs <= inner_hi)
        if sel.sum() < 4:
            continue
        t = p.t_start + (xs[sel] - x_lo) / (fit.ax * PAPER_SPEED_MM_PER_S)
        zero = pulse[p.row] if np.isfinite(pulse[p.row]) else _mode(ys[sel])
        v = (zero - ys[sel]) * mm_per_px_y
        n0 = int(np.ceil(p.t_start * fs - 1e-9))
        n1 = min(num_samples, int(np.ceil(p.t_end * fs - 1e-9)))
        if n1 <= n0:
            continue
        out[n0:n1, col] = np.interp(np.arange(n0, n1) / fs, t, v).astype(np.float32)
    return out
