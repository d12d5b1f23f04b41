"""Ink-probability page image -> 12-lead signal in mV (the Challenge's digitization task).

Pipeline: estimate and undo a small rotation, find the rows' baselines in the ink's row profile and
fit them to a layout from :mod:`derc.render.layout`, anchor each row's x axis on its trace's sub-pixel
ends (less the pen's round cap, a third of the ink mass per column), rescale a faint trace, and when the
rows tilt apart (perspective) warp the page by a homography from the rows' ends and refit. With the page
photo, its printed grid (:mod:`derc.digitize.grid`) gives the scale of rows cut by the image edge and the
local shifts of creased or wrinkled paper. Each row is traced column by column following continuity
(Viterbi, :mod:`derc.digitize.viterbi`); flat columns give their ink-weighted centre, apexes and troughs the
sub-pixel run end less half a stroke width, and steep strokes the ink-weighted x of every pixel row's
horizontal run (two centre lines, a half-width inside the run's edges, where an up- and a downstroke touch),
kept only where the row's own vertical run in that column reaches (a run can cross into a neighbour's QRS).
Px become mV and seconds, and each panel is resampled into its lead's time window relative to its
isoelectric level. Limb leads not shown at a time are derived from those shown then, and six shown at once are
reconciled (:mod:`derc.digitize.limb`); other unshown samples stay ``fill`` (NaN).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.signal import find_peaks

from derc.digitize.ends import row_ends
from derc.digitize.grid import grid_map, grid_scale, row_shift, smooth_across_rows
from derc.digitize.level import isoelectric_level
from derc.digitize.limb import complete_limb_leads
from derc.digitize.lines import fit_line, robust_line
from derc.digitize.medians import column_medians, median
from derc.digitize.rowfit import row_scores
from derc.digitize.runs import band_run_lengths, plateau_middle, run_at, stroke_mass
from derc.digitize.skew import profile_sharpness
from derc.digitize.smooth import gaussian_smooth
from derc.digitize.steep import SHORT_SPAN, steep_points, steep_runs
from derc.digitize.viterbi import cheapest_paths, claims_near, path_costs
from derc.render.layout import (
    CALIBRATION_WIDTH_MM,
    GAIN_MM_PER_MV,
    GRID_MAJOR_MM,
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
INK_FLOOR = 0.1  # ink below this is background noise when measuring the pen
CALIBRATION_LEFT_MM = TRACE_LEFT_MM - CALIBRATION_WIDTH_MM - 2.0  # pulse: flat 1 mm, up 5 mm, flat 1 mm
TRACE_RIGHT_MM = TRACE_LEFT_MM + TRACE_WIDTH_MM
END_CAP_FRACTION = 0.34
# a trace whose typical peak ink is below FULL_INK_LEVEL is rescaled to peak 1 (above MIN_INK_LEVEL: an
# emptier page is left alone rather than blowing up its noise). Clean 896x1152 pages peak at 0.94-1.0; blurred
# ink maps at 0.61-0.62 gained 1.2-1.4 dB from the rescaling, at 0.83-0.86 they lost 0.3-1.0 dB (the mask
# grows into the blur), so only clearly faint traces are rescaled.
FULL_INK_LEVEL = 0.75
MIN_INK_LEVEL = 0.15
# rows whose smoothed tilt moves them less than this across the page are left as they are: baseline wander
# alone tilts the smoothed rows by up to ~0.9 mm (3.7 px on clean 896x1152 pages), the benchmark's
# perspective by 0.2-2.5 mm
RECTIFY_MIN_DRIFT_MM = 1.1
# the voltage axis takes the time axis's scale (times the image's aspect) when the two differ from the layout
# fit's row-pitch scale by at most this fraction; further off, an x fit has failed and the row pitch is kept
MAX_PITCH_SCALE_DEVIATION = 0.25
# a row's time scale from its two trace ends is replaced by the printed grid's when they differ by more than
# this fraction (undistorted pages: 0.03-0.2 %)
GRID_SCALE_TOLERANCE = 0.02
# a page is unreadable when less than this share of its ink-row evidence (profile peaks, weighted by height) lies
# on the best layout's rows: UNet ink maps of the quick start's 100 test pages (224x288) have 0.85-1.0, rendered
# 896x1152 pages (clean, blurred, creased, tilted, cut in half) 1.0; noise-filled ink maps 0.48-0.56, speckled
# blank ones 0.44-0.50, where the reads score -10 to -0.4 dB (no signal scores 0)
MIN_ROW_PRECISION = 0.7


class UnreadablePage(ValueError):
    """The ink map's rows fit no known layout: no signal is better than the one a trace of it would give."""


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
    row_ax: tuple[float, ...] = ()  # per-row x scale and offset (perspective)
    row_bx: tuple[float, ...] = ()
    row_precision: float = 1.0  # share of the ink's row evidence on the layout's rows (1 with no evidence at all)
    row_found: tuple[bool, ...] = ()  # whether each row has its own ink peak (empty: all have)


@dataclass(frozen=True)
class LeadTwice:
    """A lead the page shows twice over the same time: its short panel, read apart from the rhythm strip that
    supplies the lead (lead II of a 3x4 page), over the panel's window of samples ``start`` onwards."""

    column: int  # the lead's column in the signal
    start: int
    panel: np.ndarray  # (samples,) float32 mV, the panel's reading


@dataclass(frozen=True)
class PageReading:
    """What :func:`trace_page` reads off a page: the signal as traced and the leads it shows twice."""

    signal: np.ndarray  # (samples, leads) float32 mV, NaN where not shown; no limb lead derived
    twice: tuple[LeadTwice, ...] = ()


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
    return _rotation(_as_ink(ink), max_deg)


def _rotation(ink: np.ndarray, max_deg: float = 5.0) -> float:
    """:func:`estimate_rotation` of an ink map :func:`_as_ink` already made (float32, 0..1: at 896x1152 making it
    again cost ~3 ms a page)."""
    scale = min(1.0, 1200.0 / ink.shape[1])
    small = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else ink
    ys, xs = np.nonzero(small > 0.25)
    if ys.size < 50:
        return 0.0
    w = small[ys, xs].astype(np.float64)
    xc = xs - small.shape[1] / 2.0
    h = small.shape[0]

    coarse = np.arange(-max_deg, max_deg + 1e-9, 0.25)
    best = coarse[np.argmax(profile_sharpness(ys, xc, w, coarse, h))]
    fine = np.arange(best - 0.25, best + 0.25 + 1e-9, 0.025)
    return float(fine[np.argmax(profile_sharpness(ys, xc, w, fine, h))])


def deskew(ink: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate the ink about the image centre so that traces skewed by ``angle_deg`` become horizontal."""
    if abs(angle_deg) < 0.02:
        return ink
    h, w = ink.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    return cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)


def _warp(image: np.ndarray, hom: np.ndarray) -> np.ndarray:
    h, w = image.shape
    return cv2.warpPerspective(image, hom, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)


def _row_peaks(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel y positions (ascending) and heights of the horizontal-ink peaks (trace baselines)."""
    h, w = ink.shape
    ppmm_y = h / PAGE_HEIGHT_MM
    x0, x1 = int(0.1 * w), int(0.95 * w)
    profile = gaussian_smooth(ink[:, x0:x1].sum(axis=1), max(0.5, 0.5 * ppmm_y))
    if profile.max() <= 0:
        return np.zeros(0), np.zeros(0)
    peaks, _ = find_peaks(profile, distance=max(2, int(7.0 * ppmm_y)))
    if peaks.size == 0:
        return np.zeros(0), np.zeros(0)
    heights = profile[peaks]
    top = np.sort(heights)[-4:]
    keep = heights >= 0.3 * median(top)
    peaks, heights = peaks[keep], heights[keep]
    # parabolic sub-pixel refinement
    left = profile[np.clip(peaks - 1, 0, h - 1)]
    right = profile[np.clip(peaks + 1, 0, h - 1)]
    denom = left - 2 * heights + right
    delta = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    return peaks + np.clip(delta, -0.5, 0.5), heights


def _fit_layout_rows(
    peaks: np.ndarray, heights: np.ndarray, name: str, h: int
) -> tuple[float, float, float, np.ndarray, float]:
    """Best ``y_px = a*y_mm + b`` for layout ``name``: (F1 score, a, b, matched peak per row or NaN, precision).

    Peaks count by their height (relative to the tallest rows, at most 1) in the F1: the faint profile peaks
    that tall QRS complexes or deep S waves leave between a 6x2 page's rows must not make it a 12x1 page. The
    precision is the F1's other half: the share of that peak weight the fitted rows account for.
    """
    lay = page_layout(name)
    base = np.asarray(lay.row_baselines_mm())
    ppmm = h / PAGE_HEIGHT_MM
    tol = 2.5 * ppmm
    if peaks.size == 0:
        return 0.0, ppmm, 0.0, np.full(base.size, np.nan), 1.0
    weight = np.minimum(1.0, heights / median(np.sort(heights)[-4:]))
    a = ppmm * np.linspace(0.88, 1.12, 25)
    b = (peaks[None, :, None] - a[:, None, None] * base[None, None, :]).reshape(a.size, -1)  # (na, n*nL)
    # each candidate (a, b): the weight of the peaks its rows meet, and the rows' distances to their nearest peaks
    matched, resid = row_scores(peaks, weight, a, base, b, h, tol)
    f1 = 2.0 * matched / (base.size + weight.sum())
    # where the peaks fit equally well at offsets whole row pitches apart (a page missing its top or bottom rows,
    # whose rows are evenly spaced), the page is taken as in place rather than shifted by rows
    shift = np.rint(np.abs(b) / (lay.row_pitch_mm * ppmm))
    order = np.lexsort((resid.ravel(), shift.ravel(), -np.round(f1, 9).ravel()))[0]
    ia, ib = np.unravel_index(order, f1.shape)
    best_a, best_b = float(a[ia]), float(b[ia, ib])
    pred_rows = best_a * base + best_b
    nearest = peaks[np.abs(pred_rows[:, None] - peaks[None, :]).argmin(axis=1)]
    rows = np.where(np.abs(nearest - pred_rows) < tol, nearest, np.nan)
    ok = np.isfinite(rows)
    if ok.sum() >= 2:
        best_a, best_b = fit_line(base[ok], rows[ok])
    elif ok.sum() == 1:
        best_b = float(rows[ok][0] - best_a * base[ok][0])
    precision = min(1.0, float(matched[ia, ib] / weight.sum()))
    return float(f1[ia, ib]), best_a, best_b, rows, precision


def detect_layout(ink: np.ndarray) -> str:
    """Name of the layout (``3x4``, ``6x2`` or ``12x1``) whose row baselines best explain the ink's rows."""
    ink = _as_ink(ink)
    return _fit_page(deskew(ink, estimate_rotation(ink)), None, 0.0).layout


def _row_bands(rows_px: np.ndarray, half: int, height: int) -> list[tuple[int, int]]:
    """Image row ranges [lo, hi) of ``half`` px around each baseline, clipped; bands under 2 px are dropped."""
    bands = [(int(max(0, y - half)), int(min(height, y + half + 1))) for y in rows_px]
    return [(lo, hi) for lo, hi in bands if hi - lo >= 2]


def _pen_width(ink: np.ndarray, rows_px: np.ndarray, half: int) -> float:
    """Median vertical ink-run length near the row baselines (mostly flat trace, so the pen's width in px)."""
    h, w = ink.shape
    cols = np.linspace(0.1 * w, 0.95 * w, 200).astype(np.int64)
    run = band_run_lengths(ink, np.array(_row_bands(rows_px, half, h), np.int64), cols, INK_THRESHOLD)
    return median(run) if run.size else 1.0


def _ink_width(ink: np.ndarray, rows_px: np.ndarray, half: int) -> float:
    """Sub-pixel pen width: median ink mass per column across a row's trace (flat parts dominate).

    Only the stroke counts: the pixels above INK_FLOOR joined to the column's darkest one, so that an ink map's
    background noise (a UNet's, or a scan's) does not widen the pen (summed over the whole band it did, by
    ~3 px on the noisy benchmark maps, which pulled every row's ends ~1 px inwards).
    """
    h, w = ink.shape
    cols = np.linspace(0.12 * w, 0.93 * w, 300).astype(np.int64)
    sums = []
    for lo, hi in _row_bands(rows_px, half, h):
        s = stroke_mass(ink[lo:hi, cols], INK_FLOOR)
        sums.append(s[s > 0.5])
    allv = np.concatenate(sums) if sums else np.zeros(0)
    return float(np.median(allv)) if allv.size else 1.0


def _ink_level(ink: np.ndarray, rows_px: np.ndarray, half: int) -> float:
    """Typical peak ink of the trace: per row band, the median over columns of the column's maximum.

    A blurred or faint ink map (an unsure UNet, a pale scan) holds the trace at well under 1; thresholding
    it at :data:`INK_THRESHOLD` as it is loses the thin steep strokes first, which cuts QRS peaks.
    """
    h, w = ink.shape
    cols = np.linspace(0.12 * w, 0.93 * w, 300).astype(np.int64)
    levels = [float(np.median(ink[lo:hi, cols].max(axis=0))) for lo, hi in _row_bands(rows_px, half, h)]
    return float(np.median(levels)) if levels else 1.0


def _fit_x(
    ink: np.ndarray, rows_px: np.ndarray, ay: float, pitch_mm: float, last_mm: float = TRACE_RIGHT_MM
) -> tuple[np.ndarray, np.ndarray]:
    """Per row ``x_px = ax * x_mm + bx`` from the trace's first and last ink (0 s and 10 s), lines across rows.

    The ink holds only waveforms (no calibration pulse), so each row's ends anchor its time axis; fitting the
    ends as lines in the row's y absorbs rotation residue and perspective.
    """
    ax0 = ink.shape[1] / PAGE_WIDTH_MM
    half = max(1, int(0.4 * pitch_mm * ay))
    lefts, rights = row_ends(ink, rows_px, half, max(2, int(2.0 * ax0)), INK_THRESHOLD)
    # the round caps reach beyond the first and last samples by about a third of the ink mass per column
    # (measured on cv2 anti-aliased polylines at 200 dpi and resized to 896x1152)
    radius = END_CAP_FRACTION * _ink_width(ink, rows_px, half)
    left = robust_line(rows_px, lefts + radius)
    right = robust_line(rows_px, rights - radius)
    ax = (right - left) / (last_mm - TRACE_LEFT_MM)
    bx = left - ax * TRACE_LEFT_MM
    # padding or cropping moves the page by up to ~10% of its width (bx ~ 100 px at 896x1152)
    bad = ~np.isfinite(ax) | (ax < 0.85 * ax0) | (ax > 1.15 * ax0) | (np.abs(bx) > 0.2 * ink.shape[1])
    ax = np.where(bad, ax0, ax)
    bx = np.where(bad, 0.0, bx)
    return ax, bx


def _fit_page(ink: np.ndarray, layout: str | None, angle: float, fs: float | None = None) -> PageFit:
    h, _ = ink.shape
    peaks, heights = _row_peaks(ink)
    names = LAYOUTS if layout is None else (layout,)
    fits = {name: _fit_layout_rows(peaks, heights, name, h) for name in names}
    name = max(names, key=lambda n: (fits[n][0], -abs(fits[n][1] / (h / PAGE_HEIGHT_MM) - 1.0)))
    _, ay, by, rows, precision = fits[name]
    lay = page_layout(name)
    base = np.asarray(lay.row_baselines_mm())
    rows_px = np.where(np.isfinite(rows), rows, ay * base + by)
    # the last drawn sample sits one sample period before 10 s
    last_mm = TRACE_RIGHT_MM - (PAPER_SPEED_MM_PER_S / fs if fs else 0.0)
    ax, bx = _fit_x(ink, rows_px, ay, lay.row_pitch_mm, last_mm)
    return PageFit(
        name,
        ay,
        by,
        median(ax),
        median(bx),
        tuple(float(v) for v in rows_px),
        angle,
        tuple(float(v) for v in ax),
        tuple(float(v) for v in bx),
        precision,
        tuple(bool(v) for v in np.isfinite(rows)),
    )


def _row_lines(ink: np.ndarray, fit: PageFit, pitch_mm: float, strips: int = 10) -> np.ndarray:
    """Per row ``(intercept, slope)`` of its isoelectric line ``y = c0 + c1 * x``: the ink's row-profile peak in
    ``strips`` vertical strips between the row's ends, fitted robustly (QRS and wander strips drop out)."""
    h, _ = ink.shape
    half = max(2, int(0.45 * pitch_mm * fit.ay))
    sigma = max(0.5, 0.3 * fit.ay)
    out = np.zeros((len(fit.row_baselines_px), 2))
    for r, y0 in enumerate(fit.row_baselines_px):
        x_l = fit.row_ax[r] * TRACE_LEFT_MM + fit.row_bx[r]
        x_r = fit.row_ax[r] * TRACE_RIGHT_MM + fit.row_bx[r]
        edges = np.linspace(x_l, x_r, strips + 1).astype(np.int64)
        lo, hi = int(max(0, y0 - half)), int(min(h, y0 + half + 1))
        # each strip's row profile (its columns summed), all strips smoothed down the rows in one call
        sums = [ink[lo:hi, max(a, 0) : max(b, 1)].sum(axis=1) for a, b in itertools.pairwise(edges)]
        # each strip's profile smoothed down the rows (none where the band lies off the image)
        profs = gaussian_smooth(np.stack(sums), sigma).T if hi > lo else np.zeros((0, strips))
        found = profs.max(axis=0, initial=0.0) > 0 if hi > lo else np.zeros(strips, bool)
        xs_a = (0.5 * (edges[:-1] + edges[1:]))[found]
        ys_a = lo + np.argmax(profs, axis=0)[found].astype(np.float64) if hi > lo else np.zeros(0)
        if xs_a.size >= 3:
            line = robust_line(xs_a, ys_a)
            slope = (line[-1] - line[0]) / max(xs_a[-1] - xs_a[0], 1.0)
            out[r] = (line[0] - slope * xs_a[0], slope)
        else:
            out[r] = (y0, 0.0)
    return out


def _rectify(ink: np.ndarray, fit: PageFit, fs: float | None) -> np.ndarray | None:
    """The homography that makes every row level with its ends where the layout puts them, or None when the
    rows already are (their smoothed tilt moves them less than RECTIFY_MIN_DRIFT_MM): from each row's two ends
    (perspective)."""
    lay = page_layout(fit.layout)
    lines = _row_lines(ink, fit, lay.row_pitch_mm)
    row_ax, row_bx = np.asarray(fit.row_ax), np.asarray(fit.row_bx)
    last_mm = TRACE_RIGHT_MM - (PAPER_SPEED_MM_PER_S / fs if fs else 0.0)
    x_l, x_r = row_ax * TRACE_LEFT_MM + row_bx, row_ax * last_mm + row_bx
    if lines.shape[0] < 3:
        return None
    # a homography tilts the rows by a slope that changes smoothly (about linearly) down the page, while
    # baseline wander tilts single rows at random: keep the smooth part, centred on each row's middle
    x_c = 0.5 * (x_l + x_r)
    y_c = lines[:, 0] + lines[:, 1] * x_c
    slope = robust_line(y_c, lines[:, 1])
    if np.max(np.abs(slope) * (x_r - x_l)) < RECTIFY_MIN_DRIFT_MM * fit.ay:
        return None
    lines = np.stack([y_c - slope * x_c, slope], axis=1)
    base = np.asarray(lay.row_baselines_mm())
    src = np.concatenate(
        [np.stack([x_l, lines[:, 0] + lines[:, 1] * x_l], 1), np.stack([x_r, lines[:, 0] + lines[:, 1] * x_r], 1)]
    )
    dst = np.concatenate(
        [np.stack([fit.ax * TRACE_LEFT_MM + fit.bx + 0 * base, fit.ay * base + fit.by], 1),
         np.stack([fit.ax * last_mm + fit.bx + 0 * base, fit.ay * base + fit.by], 1)]
    )  # fmt: skip
    hom, _ = cv2.findHomography(src.astype(np.float32), dst.astype(np.float32), 0)
    return hom


def _dp_runs(
    win: np.ndarray, lo: np.ndarray, pitch_px: float, pen: float, resets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assign ink to rows jointly: (mask of each row's own ink, top, bottom) of the run its path is on (-1 if none).

    A first pass traces each row alone; the second pass makes ink near the other rows' paths costly and
    removes it from this row's runs, so touching QRS complexes of neighbouring rows stay apart.
    """
    _, r, k = win.shape
    centre = (k - 1) / 2.0
    band = np.maximum(0.0, np.abs(np.arange(k) - centre) - 0.5 * pitch_px) / pitch_px
    # ink of 0.5 counts in full (anti-aliased thin strokes); vertical moves are cheap along ink of this or the
    # previous column (a steep stroke may straddle them)
    unary, step = path_costs(win, (0.3 * band).astype(np.float32))
    path = cheapest_paths(unary, step, resets)
    mask = win > INK_THRESHOLD
    # window index of every other row's first-pass path in each row's window (N, other, R): pixels within +-reach
    # of it are claimed by that row
    pos = (path + lo[None, :])[:, :, None] - lo[None, None, :]
    reach = int(np.ceil(0.5 * pen + 1.0))
    keep = (np.arange(r)[:, None] != np.arange(r)[None, :])[None] & (pos + reach >= 0) & (pos - reach < k)
    if r > 1:
        path = cheapest_paths(unary, step, resets, claimed=claims_near(pos, keep, reach, k), claim_cost=0.6)
    top, bot = run_at(mask, path, axis=2)
    on = top <= bot  # the path is on ink
    # a run that reaches another row's trace is ambiguous (touching QRS): keep it to a pen width beyond
    # this row's own path over columns i-1..i+1; other runs keep their full extent (apexes)
    near = keep & (top[:, None, :] <= pos + reach) & (bot[:, None, :] >= pos - reach)
    touched = near.any(axis=1)
    prev, nxt = np.roll(path, 1, axis=0), np.roll(path, -1, axis=0)
    prev[0], nxt[-1] = path[0], path[-1]
    slack = int(np.ceil(pen)) + 2
    top = np.where(touched, np.maximum(top, np.minimum(np.minimum(prev, nxt), path) - slack), top)
    bot = np.where(touched, np.minimum(bot, np.maximum(np.maximum(prev, nxt), path) + slack), bot)
    top = np.where(on, top, -1)
    bot = np.where(on, bot, -1)
    return mask, top, bot


def _trace_rows(
    ink: np.ndarray, rows_px: np.ndarray, pitch_px: float, ppmm: float, c0: int, c1: int, resets: np.ndarray, pen: float
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Follow each row's trace from column c0 to c1 (exclusive); (x, y) centre-line points per row, sorted by x."""
    h, _ = ink.shape
    half = max(2, round(max(pitch_px, 32.0 * ppmm)))  # tall QRS reach well into the next rows in 12x1
    hw = 2 * half + 1
    lo = np.rint(rows_px).astype(np.int64) - half
    yw = lo[:, None] + np.arange(hw)[None, :]  # (R, hw) image rows of each window
    outside = (yw < 0) | (yw >= h)
    win = ink[np.clip(yw, 0, h - 1)][:, :, c0:c1]  # (R, hw, N)
    win = np.where(outside[:, :, None], 0.0, win)
    win = np.ascontiguousarray(np.transpose(win, (2, 0, 1)), dtype=np.float32)  # (N, R, hw)
    mask, top, bot = _dp_runs(win, lo, pitch_px, pen, resets)
    n, r = mask.shape[0], mask.shape[1]
    rr = np.arange(r)
    valid = top >= 0
    ti, bi = np.clip(top, 0, hw - 1), np.clip(bot, 0, hw - 1)
    ni, ri = np.meshgrid(np.arange(n), rr, indexing="ij")
    # ink-weighted centre of each column's run and the anti-aliased pixel each side of it
    ta, tb = np.maximum(ti - 1, 0), np.minimum(bi + 2, hw)
    flat_win = win.ravel()
    w_tot, y_tot = _span_sums(flat_win, (ni * r + ri) * hw, 1, ta, tb)
    cen = np.where(w_tot > 0, y_tot / np.where(w_tot > 0, w_tot, 1.0), (ti + bi) / 2.0)
    extent = np.where(valid, bi - ti + 1, 0)
    thick = column_medians(extent, valid, 1.0)
    radius = np.maximum(0.0, (thick - 1.0) / 2.0)
    tall = valid & (extent > thick + 1.0)
    # steep strokes: the centre line's x at each pixel row is the middle of the horizontal ink run
    # horizontal runs split at valleys of the ink (the faint gap between an up- and a downstroke that touch)
    hs, he, steep = steep_runs(win, mask, ti, bi, tall, radius, thick)
    # extreme columns of tall runs: the apex (or trough) is the run's end, pulled in by the pen radius
    up = np.full_like(ti, hw)
    up[:, :] = np.where(valid, ti, hw)
    dn = np.where(valid, bi, -1)
    # within a pen's width of the apex every column's run reaches about as high (the round cap), and the ink's
    # edge noise makes several of them local minima: an apex is the highest over the cap's columns
    cap = 2 * (int(np.ceil(0.5 * pen)) + 1) + 1
    highest = up <= minimum_filter1d(up, cap, axis=0, mode="nearest")
    lowest = dn >= maximum_filter1d(dn, cap, axis=0, mode="nearest")
    apex = plateau_middle(tall & highest, up)
    trough = plateau_middle(tall & lowest, dn)
    # half the sub-pixel width of a stroke: half the ink mass of a flat column (anti-aliasing included)
    flat_mass = w_tot
    flat = valid & ~tall
    half_w = 0.5 * column_medians(flat_mass, flat, thick)
    # sub-pixel ends of the run: the apex (trough) is half a stroke width inside
    top_edge = ti - _edge_frac(win[ni, ri, ti], np.where(ti > 0, win[ni, ri, np.maximum(ti - 1, 0)], 0.0))
    bot_edge = bi + _edge_frac(win[ni, ri, bi], np.where(bi < hw - 1, win[ni, ri, np.minimum(bi + 1, hw - 1)], 0.0))
    # a low, rounded peak (P or T wave, small QRS) in flat columns: the pen's ink spreads below it, so the
    # centre of the column's ink reads the peak low; its top edge is the peak less the pen's half-width
    cols = np.arange(n)
    left, right = np.maximum(cols - cap // 2, 0), np.minimum(cols + cap // 2, n - 1)  # half a cap away, clipped
    up_l, up_r, dn_l, dn_r = up[left], up[right], dn[left], dn[right]
    flat_peak = plateau_middle(valid & ~tall & highest & (up < up_l) & (up < up_r), up)
    flat_dip = plateau_middle(valid & ~tall & lowest & (dn > dn_l) & (dn > dn_r), dn)
    apex, trough = apex | flat_peak, trough | flat_dip
    col_y = np.where(apex, top_edge + half_w[None, :], np.where(trough, bot_edge - half_w[None, :], cen))
    use_col = valid & (~tall | apex | trough)
    # steep strokes' points (the ink-weighted centre of each horizontal run, or two touching strokes' centre
    # lines), the kept columns' centres among them
    flat_cols = use_col & ~tall
    return steep_points(
        win, mask, steep, hs, he, ti, bi, valid, use_col, flat_cols, col_y, half_w, thick, lo, c0, INK_THRESHOLD
    )


def _span_sums(
    values: np.ndarray, base: np.ndarray, stride: int, a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and first moment (sum of value * position) of ``values[base + stride * p]`` over positions a <= p < b.

    Spans (a column's run, a steep stroke's horizontal run) are mostly a few pixels long, so they are summed
    directly, the short ones padded to a common length and the few long ones apart: cumulative sums over the
    whole (columns x rows x window) array cost ~0.15 s per 896x1152 page.
    """
    base, a, b = np.broadcast_arrays(base, a, b)
    total, moment = np.zeros(a.shape), np.zeros(a.shape)
    length = b - a
    for part in (length <= SHORT_SPAN, length > SHORT_SPAN):
        if not part.any():
            continue
        pos = a[part][:, None] + np.arange(int(length[part].max()))[None, :]
        inside = pos < b[part][:, None]
        idx = base[part][:, None] + stride * np.where(inside, pos, a[part][:, None])
        v = np.where(inside, values[idx], 0.0).astype(np.float64)
        total[part], moment[part] = v.sum(axis=1), (v * pos).sum(axis=1)
    return total, moment


def _row_windows(fit: PageFit, lay: PageLayout, fs: float) -> list[tuple[int, int, float, float, float]]:
    """Per row, what the grid is read over: (band top, band bottom, 5 mm in px, first and last sample's x)."""
    half = int(0.5 * lay.row_pitch_mm * fit.ay)
    last_mm = TRACE_RIGHT_MM - PAPER_SPEED_MM_PER_S / fs
    return [
        (int(y) - half, int(y) + half + 1, GRID_MAJOR_MM * ax, ax * TRACE_LEFT_MM + bx, ax * last_mm + bx)
        for y, ax, bx in zip(fit.row_baselines_px, fit.row_ax, fit.row_bx, strict=True)
    ]


def _cut_at_edge(on_image: np.ndarray, y: float, x: float, reach: float) -> bool:
    """Whether the image's edge (``on_image`` < 0.5, or beyond the array) is within ``reach`` px of (x, y) along
    the row: a trace end there was cut by the edge rather than drawn there."""
    h, w = on_image.shape
    yi = int(np.clip(round(y), 0, h - 1))
    lo, hi = int(np.floor(x - reach)), int(np.ceil(x + reach))
    if lo < 0 or hi > w - 1:
        return True
    return bool((on_image[yi, lo : hi + 1] < 0.5).any())


def _row_cuts(fit: PageFit, lay: PageLayout, fs: float, on_image: np.ndarray) -> list[tuple[bool, bool]]:
    """Per row, whether its left and right trace ends were cut by the image's edge (a zoomed-in or cropped
    photo). ``on_image`` is 1 where the (deskewed, rectified) image holds pixels: its edge is where they stop."""
    margin = 2.0 + 0.5 * fit.ay  # px: a trace end this close to the image edge was cut there
    return [
        (_cut_at_edge(on_image, y, x_left, margin), _cut_at_edge(on_image, y, x_right, margin))
        for y, (_, _, _, x_left, x_right) in zip(fit.row_baselines_px, _row_windows(fit, lay, fs), strict=True)
    ]


def _grid_time_axes(
    grid: np.ndarray,
    ink: np.ndarray,
    fit: PageFit,
    lay: PageLayout,
    fs: float,
    cuts: Sequence[tuple[bool, bool]],
    phases: dict,
) -> PageFit:
    """Rows whose trace runs into the image's edge (``cuts``, from :func:`_row_cuts`) cannot take their scale
    from their two ends: they take the grid's scale, anchored at the end that is on the page. So do rows whose
    ends disagree with the grid by more than GRID_SCALE_TOLERANCE (an end lost in a dropout or speckle)."""
    last_mm = TRACE_RIGHT_MM - PAPER_SPEED_MM_PER_S / fs
    row_ax, row_bx = list(fit.row_ax), list(fit.row_bx)
    for r, (y_lo, y_hi, period, x_left, x_right) in enumerate(_row_windows(fit, lay, fs)):
        cut_left, cut_right = cuts[r]
        scale = grid_scale(grid, ink, y_lo, y_hi, period, x_left, x_right, cache=phases)
        if scale is None or (cut_left and cut_right):
            continue
        if cut_right or (not cut_left and abs(scale / row_ax[r] - 1.0) > GRID_SCALE_TOLERANCE):
            row_ax[r], row_bx[r] = scale, x_left - scale * TRACE_LEFT_MM
        elif cut_left:
            row_ax[r], row_bx[r] = scale, x_right - scale * last_mm
    return dataclasses.replace(fit, row_ax=tuple(row_ax), row_bx=tuple(row_bx))


def _grid_shifts(
    grid: np.ndarray, ink: np.ndarray, fit: PageFit, lay: PageLayout, fs: float, phases: dict
) -> list[np.ndarray | None]:
    """Per row, the grid-measured local paper shift (px per column) off the straight line through its ends."""
    shifts = [row_shift(grid, ink, *window, cache=phases) for window in _row_windows(fit, lay, fs)]
    return smooth_across_rows(shifts)


def _edge_frac(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """How far (0..1 px) beyond the last inked pixel the ink crosses the threshold, linearly between centres."""
    return np.clip((inside - INK_THRESHOLD) / np.maximum(inside - outside, 1e-6), 0.0, 1.0)


def _amplitude_scale(fit: PageFit, cuts: Sequence[tuple[bool, bool]], aspect: float) -> float:
    """Pixels per millimetre of the page's voltage axis.

    Printers place their rows where they like (the package's renderer at a fixed pitch, ECG-Image-Kit and
    others elsewhere), so the layout fit's y scale (``fit.ay``, our row pitch stretched onto the page's rows) is
    the voltage scale only on pages drawn to our layouts: a 3x4 page with rows 35.5 mm apart read 10 % tall.
    A row's trace spans 10 s (250 mm) whatever the printer, so the rows' x scale is the page's; the y scale is
    that times ``aspect``, the ratio of the vertical to the horizontal resizing the image went through. Rows cut
    by the image's edge or without ink of their own do not count (their x scale is the grid's or a guess); with
    none left, or a time-axis scale off the row pitch's by over MAX_PITCH_SCALE_DEVIATION, ``fit.ay`` stays.
    (Pages rectified for perspective keep ``fit.ay`` too: their axes are the homography's; see the caller.)"""
    found = fit.row_found or (True,) * len(fit.row_ax)
    whole = [ax for ax, cut, own in zip(fit.row_ax, cuts, found, strict=True) if own and not any(cut)]
    if not whole:
        return fit.ay
    scale = float(np.median(whole)) * aspect
    return scale if abs(scale / fit.ay - 1.0) <= MAX_PITCH_SCALE_DEVIATION else fit.ay


def _lead_index(leads: Sequence[str]) -> dict[str, int]:
    return {str(name).strip().lower(): i for i, name in enumerate(leads)}


def digitize(
    ink: np.ndarray,
    *,
    fs: float,
    num_samples: int,
    leads: Sequence[str],
    layout: str | None = None,
    fill: float = np.nan,
    derive_limb: bool = True,
    page: np.ndarray | None = None,
    source_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Recover the ECG from an ink-probability page (1 = waveform ink), as ``(num_samples, len(leads))`` float32 mV.

    ``leads`` gives the output column order (names matched case-insensitively); the image may have any size
    and a small rotation. ``layout`` (``3x4``, ``6x2``, ``12x1``) is detected when None. Each panel is
    placed in its lead's time window, relative to its isoelectric level (the mode of the trace). Lead II is
    taken from the 10 s rhythm strip when the layout has one. Samples outside the shown window(s), beyond
    10 s, of leads unknown to the layout, or of panels where no trace was found are ``fill`` (NaN by
    default: the Challenge's SNR leaves NaN samples out and scales by the kept fraction, which beats zeros).
    With ``derive_limb`` a limb lead's unshown samples are first derived from the limb leads shown at the same
    time (:func:`derc.digitize.limb.complete_limb_leads`: in 3x4, I and III over 2.5-5 s from aVR, aVL, aVF
    and the rhythm strip, and aVR, aVL, aVF over 0-2.5 s from I, II and III); where all six limb leads are shown
    at once (6x2, 12x1) the six tracings are replaced by their least-squares fit. ``page`` is the RGB photo the
    ink map came from (any size; resized to the ink's): its printed grid corrects each row's time axis
    where the paper is locally stretched or shifted (:mod:`derc.digitize.grid`). ``source_shape`` is the
    (height, width) of the image the ink map was resized from (square pixels there); None: the ink map is a
    whole letter page. The voltage scale comes from the time axis and that aspect, not from the row spacing.

    Raises :class:`UnreadablePage` when the ink has rows but they fit no layout (noise, a page turned on its
    side): tracing them would give a signal worse than none. An empty page gives ``fill`` throughout.
    """
    out = trace_page(
        ink, fs=fs, num_samples=num_samples, leads=leads, layout=layout, page=page, source_shape=source_shape
    ).signal
    if derive_limb:
        out = complete_limb_leads(out, leads)
    if not np.isnan(fill):
        out[np.isnan(out)] = fill
    return out


def trace_page(
    ink: np.ndarray,
    *,
    fs: float,
    num_samples: int,
    leads: Sequence[str],
    layout: str | None = None,
    page: np.ndarray | None = None,
    source_shape: tuple[int, int] | None = None,
) -> PageReading:
    """:func:`digitize` (whose arguments these are) before its limb leads are derived and its gaps filled, with
    the short panel of each lead the page also shows on its rhythm strip (lead II of a 3x4 page) read apart: the
    two readings of one lead agree on a page read the right way up (:mod:`derc.digitize.upright`)."""
    if num_samples < 0 or fs <= 0:
        raise ValueError("need fs > 0 and num_samples >= 0")
    out = np.full((num_samples, len(leads)), np.nan, dtype=np.float32)
    if num_samples == 0 or len(leads) == 0:
        return PageReading(out)
    ink = _as_ink(ink)
    grid = None
    if page is not None:
        page = np.asarray(page)
        if page.shape[:2] != ink.shape:
            page = cv2.resize(page, (ink.shape[1], ink.shape[0]), interpolation=cv2.INTER_AREA)
        grid = grid_map(page)
    h, w = ink.shape
    src_h, src_w = source_shape if source_shape is not None else (PAGE_HEIGHT_MM, PAGE_WIDTH_MM)
    if src_h <= 0 or src_w <= 0:
        raise ValueError(f"source_shape must be positive, got {source_shape}")
    twice: list[LeadTwice] = []
    _trace_panels(ink, out, fs, leads, layout, grid, (h / src_h) / (w / src_w), twice)
    return PageReading(out, tuple(twice))


def _trace_panels(
    ink: np.ndarray,
    out: np.ndarray,
    fs: float,
    leads: Sequence[str],
    layout: str | None,
    grid: np.ndarray | None,
    aspect: float,
    twice: list[LeadTwice] | None = None,
) -> None:
    """Trace the page and write each shown panel into its lead's time window of ``out`` (NaN elsewhere).
    ``aspect``: the vertical over the horizontal resizing from the source image (see :func:`_amplitude_scale`).
    The short panel of a lead the rhythm strip supplies is appended to ``twice`` (when given) instead."""
    num_samples = out.shape[0]
    angle = _rotation(ink)  # trace_page made the ink map with _as_ink
    ink = deskew(ink, angle)
    grid = None if grid is None else deskew(grid, angle)
    on_image = deskew(np.ones_like(ink), angle)  # where the image's pixels went
    fit = _fit_page(ink, layout, angle, fs)
    if fit.row_precision < MIN_ROW_PRECISION:
        raise UnreadablePage(
            f"the ink's rows fit no layout: {fit.row_precision:.0%} of their evidence lies on the best one's "
            f"({fit.layout}) rows, a readable page has at least {MIN_ROW_PRECISION:.0%}"
        )
    lay: PageLayout = page_layout(fit.layout)
    rows_px = np.asarray(fit.row_baselines_px)
    inked = rows_px[np.asarray(fit.row_found, bool)] if fit.row_found else rows_px  # rows with ink of their own
    peak = _ink_level(ink, inked, max(1, int(0.4 * lay.row_pitch_mm * fit.ay)))
    if MIN_INK_LEVEL < peak < FULL_INK_LEVEL:  # faint trace: stretch it so its centre line reads as full ink
        ink = np.minimum(ink * (1.0 / peak), 1.0)
        fit = _fit_page(ink, fit.layout, angle, fs)
    hom = _rectify(ink, fit, fs)
    if hom is not None:
        ink = _warp(ink, hom)
        grid = None if grid is None else _warp(grid, hom)
        on_image = _warp(on_image, hom)
        fit = _fit_page(ink, fit.layout, angle, fs)
    phases: dict = {}  # each row window's grid phase, read once for the time axes and the shifts (same ink)
    cuts = _row_cuts(fit, lay, fs, on_image)
    if grid is not None:
        fit = _grid_time_axes(grid, ink, fit, lay, fs, cuts, phases)
    rows_px = np.asarray(fit.row_baselines_px)
    w = ink.shape[1]
    row_ax, row_bx = np.asarray(fit.row_ax), np.asarray(fit.row_bx)
    c0 = int(max(0, np.floor(np.min(row_ax * TRACE_LEFT_MM + row_bx)) - 1))
    c1 = int(min(w, np.ceil(np.max(row_ax * TRACE_RIGHT_MM + row_bx)) + 2))
    if c1 - c0 < 4:
        return
    resets = np.zeros((c1 - c0, rows_px.size), dtype=bool)
    for p in lay.panels:
        resets[int(np.clip(round(row_ax[p.row] * p.x_mm + row_bx[p.row]) - c0, 0, c1 - c0 - 1)), p.row] = True

    index = _lead_index(leads)
    rhythm = {p.lead.lower() for p in lay.panels if p.t_end - p.t_start >= 10.0 - 1e-6 and len(lay.panels) > 12}
    pen = _pen_width(ink, rows_px, max(1, int(0.4 * lay.row_pitch_mm * fit.ay)))
    points = _trace_rows(ink, rows_px, lay.row_pitch_mm * fit.ay, fit.ay, c0, c1, resets, pen)
    # a rectified page's axes are the homography's, set from our layout's rows: the image's aspect no longer
    # holds there, and under perspective a row's vertical scale differs from its horizontal one anyway
    volts_ppmm = fit.ay if hom is not None else _amplitude_scale(fit, cuts, aspect)
    mm_per_px_y = 1.0 / (volts_ppmm * GAIN_MM_PER_MV)
    shifts = _grid_shifts(grid, ink, fit, lay, fs, phases) if grid is not None else [None] * rows_px.size
    for p in lay.panels:
        col = index.get(p.lead.lower())
        if col is None:
            continue
        supplied = p.lead.lower() in rhythm and p.t_end - p.t_start < 10.0 - 1e-6  # by the rhythm strip
        if supplied and twice is None:
            continue
        if fit.row_found and not fit.row_found[p.row]:
            continue  # no ink of its own (a cut or blank part of the page): its trace would be a neighbour's
        xs, ys = points[p.row]
        if shifts[p.row] is not None:  # where the paper is locally shifted, read the time of its unshifted place
            xs = xs - np.interp(xs, np.arange(w), shifts[p.row])
        ax = row_ax[p.row]
        x_lo, x_hi = ax * p.x_mm + row_bx[p.row], ax * (p.x_mm + p.width_mm) + row_bx[p.row]
        # where two panels meet both pens overlap for about a pen width; the tracer's reset at the panel start
        # mostly picks the right one, and dropping the overlap (extrapolating flat) cost more (~1 dB)
        inner_lo = x_lo - (0.0 if p.x_mm > TRACE_LEFT_MM + 1e-6 else 0.5)
        inner_hi = x_hi + (0.0 if p.x_mm + p.width_mm < TRACE_RIGHT_MM - 1e-6 else 0.5)
        sel = (xs >= inner_lo) & (xs <= inner_hi)
        if sel.sum() < 4:
            continue
        t = p.t_start + (xs[sel] - x_lo) / (ax * PAPER_SPEED_MM_PER_S)
        zero = isoelectric_level(ys[sel])
        v = (zero - ys[sel]) * mm_per_px_y
        n0 = int(np.ceil(p.t_start * fs - 1e-9))
        n1 = min(num_samples, int(np.ceil(p.t_end * fs - 1e-9)))
        if n1 <= n0:
            continue
        values = np.interp(np.arange(n0, n1) / fs, t, v).astype(np.float32)
        if supplied:
            twice.append(LeadTwice(col, n0, values))
        else:
            out[n0:n1, col] = values
