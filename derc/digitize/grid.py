"""Local time-axis correction from the printed grid of the page photo (wrinkles, creases, lens warp).

The UNet's ink map holds only the waveform, so the digitizer's x axis rests on each row's two trace ends.
A crumpled or creased sheet shifts the paper locally by up to a millimetre or two (40-80 ms), which those
two anchors cannot see. The photo's grid can: its 5 mm lines repeat at a known period, so the local phase of
the grid along a row (complex demodulation at that period of the column medians of the row's band) gives how
far the paper has moved there. Only the part that a straight line through the row's ends does not explain is
used; the drift of the phase along the row gives the grid's own scale, for rows whose trace the image cuts.

The grid map is the photo's red-minus-green level where the grid is red, pink or orange (most ECG paper;
the trace, text and most marks are dark or blue), else how far the darkest colour channel falls below the
local paper level (grey, blue, green or violet grids). A row whose grid pattern does not stand out at the
grid's period against frequencies the grid has no harmonic at (a page printed without a grid) gets no
correction.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from derc.digitize.jit import kernel
from derc.digitize.lines import fit_line
from derc.digitize.medians import median
from derc.digitize.smooth import gaussian_smooth
from derc.render.layout import GRID_MAJOR_MM

# demodulation window: a Gaussian of this many grid periods (5 mm) along the row
WINDOW_PERIODS = 1.2
# a row's correction is used only where the grid's local amplitude is at least this fraction of its median
MIN_RELATIVE_AMPLITUDE = 0.35
# pixels whose red level (on a red grid; else every channel) is below this (of full scale) are dark print, not grid
DARK_RED = 0.55
# larger corrections are not trusted (the grid phase wraps at half a period, 2.5 mm)
MAX_SHIFT_MM = 2.0
# a row whose largest correction is under this is left as it is: on flat, undistorted pages the grid's
# phase drifts by up to ~0.06 mm against the trace ends, and even that much time error on steep QRS
# strokes costs ~0.5 dB (measured: no gate -0.5 dB on clean pages; 0.1 mm costs no warped page anything)
MIN_SHIFT_MM = 0.1
# a row is read only if the grid's demodulated amplitude at its period is this many times its amplitude at
# these control frequencies (in cycles per grid period; no harmonic of the 5 mm pattern falls on them).
# Measured on 36 rendered pages per grid kind (3x4, 6x2, 12x1; noisy, wrinkled, clean): rows of red grids
# 5.7-102 (median 39), grey 3.6-76 (29), other hues 7.0-98 (44); pages printed without a grid 0-1.44, whose
# "corrections" had cost 6.5 dB (bench_digitize, noisy case: 15.3 dB without them, 8.9 with)
CONTROL_FREQUENCIES = (0.6, 1.5)
MIN_CONTRAST = 2.5


def grid_map(page: np.ndarray) -> np.ndarray:
    """(H, W) float32 grid strength of an RGB (or RGBA) uint8/float page; NaN on dark print.

    A red, pink or orange grid (its red-minus-green level holds at least half of the page's colour-or-darkness)
    is read as red minus green, clipped at 0, which ignores shadows and blue print. Any other grid (grey, blue,
    green, violet) is read as how far the darkest channel falls below the local paper level, so a grey or
    coloured grid on white paper shows as well. A grey page (H, W) or (H, W, 1) has no colour to tell its grid
    by: all zeros (no correction)."""
    arr = np.asarray(page)
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] < 3):
        return np.zeros(arr.shape[:2], dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"expected an HxW or HxWx3 page image, got shape {arr.shape}")
    scale = 255.0 if arr.dtype == np.uint8 or arr.max(initial=0) > 1.5 else 1.0
    # split first, then each channel to float32 (the same values as converting the whole page, a third less work)
    channels = (
        cv2.split(np.ascontiguousarray(arr[..., :3])) if arr.dtype == np.uint8 else np.moveaxis(arr[..., :3], -1, 0)
    )
    red, green, blue = (np.asarray(c, dtype=np.float32) / scale for c in channels)
    red_minus_green = np.clip(red - green, 0.0, 1.0)
    top = cv2.max(cv2.max(red, green), blue)
    # the paper level: a local maximum over a window wider than the grid's 5 mm cells, smoothed
    window = max(15, round(arr.shape[1] / 40)) | 1
    paper = cv2.blur(cv2.dilate(top, np.ones((window, window), np.uint8)), (window, window))
    darkness = np.clip(1.0 - cv2.min(cv2.min(red, green), blue) / np.maximum(paper, 1e-3), 0.0, 1.0)
    dark = top < DARK_RED  # dark in every channel: trace, text, labels
    light = ~dark
    is_red = light.any() and red_minus_green[light].mean() >= 0.5 * darkness[light].mean()
    if is_red:
        grid = red_minus_green
        # dark print (text, labels, calibration pulses, the trace itself) is no grid: NaN, left out
        grid[red < DARK_RED] = np.nan
    else:
        grid = darkness
        grid[dark] = np.nan
    return grid


@kernel("boolean[::1](boolean[::1], int64)")
def _eroded(mask: np.ndarray, reach: int) -> np.ndarray:  # pragma: no cover
    n = mask.size
    out = np.zeros(n, np.bool_)
    run = 0  # set values ending at i
    for i in range(n):
        run = run + 1 if mask[i] else 0
        if run >= 2 * reach + 1:
            out[i - reach] = True
    return out


def eroded(mask: np.ndarray, reach: int) -> np.ndarray:
    """Where ``mask`` (1-D) is set from ``reach`` before to ``reach`` after, beyond its ends counting as unset: scipy's
    ``binary_erosion(mask, np.ones(2 * reach + 1, bool), border_value=0)`` in one compiled pass (the wrapper made ~35
    Python-level calls, once a row)."""
    return _eroded(np.ascontiguousarray(mask, dtype=np.bool_), int(reach))


def _row_phase(
    grid: np.ndarray, ink: np.ndarray, y_lo: int, y_hi: int, period_px: float, x_left: float, x_right: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """(columns, the paper's offset in px there) of a row's band: the local phase of the grid's 5 mm pattern
    demodulated at ``period_px``, over the columns between ``x_left`` and ``x_right`` (None: too weak)."""
    h, w = grid.shape
    y_lo, y_hi = max(0, y_lo), min(h, y_hi)
    if y_hi - y_lo < 2 or period_px < 3.0:
        return None
    # the trace hides the grid: leave its pixels out
    band = grid[y_lo:y_hi]
    # 3x3 maximum (a dilation; at the band's edges it looks only inside, as scipy's reflecting filter does)
    near = cv2.dilate(np.ascontiguousarray(ink[y_lo:y_hi], dtype=np.float32), np.ones((3, 3), np.uint8))
    free = (near < 0.2) & np.isfinite(band)
    count = free.sum(axis=0)
    enough = count >= 3
    if enough.mean() < 0.8:
        return None
    # a column's median: horizontal grid lines (under half its pixels) and pen marks drop out, and a
    # column that loses pixels to a tall QRS keeps its level (a mean there shifted the phase by ~0.2 mm)
    ordered = np.sort(np.where(free, band, np.inf), axis=0)
    cols = np.flatnonzero(enough)
    profile = ordered[(count[cols] - 1) // 2, cols].astype(np.float64)
    profile = np.interp(np.arange(w), cols, profile)
    if profile.max() <= 0:
        return None
    x = np.arange(w, dtype=np.float64)
    level = gaussian_smooth(profile, period_px)
    profile = profile - level  # keep the line pattern, drop shading
    sigma = WINDOW_PERIODS * period_px
    lo, hi = int(max(0, np.floor(x_left))), int(min(w - 1, np.ceil(x_right)))
    if hi - lo < 4 * period_px:
        return None
    # the grid's own frequency and the control frequencies, demodulated in one call
    z, *controls = _demodulate(profile, [1.0 / period_px] + [f / period_px for f in CONTROL_FREQUENCIES], sigma)
    amp = np.abs(z)
    span = slice(lo, hi + 1)
    # a grid stands out at its own period against frequencies it has no harmonic at; paper texture, shading
    # and creases of a page printed without a grid do not
    control = sum(np.abs(c)[span] for c in controls)
    typical = median(amp[span])
    if typical < MIN_CONTRAST * median(control / len(CONTROL_FREQUENCIES)):
        return None
    strong = amp[span] >= MIN_RELATIVE_AMPLITUDE * typical
    if strong.mean() < 0.8:
        return None
    # near the edge of the printed grid the window straddles grid and margin, which biases the phase:
    # columns closer than two windows to where the grid stops are read from further inside
    reach = int(np.ceil(2.0 * sigma))
    inside = eroded(level > 0.3 * median(level[span]), reach)
    strong &= inside[span]
    if strong.sum() < 4 * period_px:
        return None
    # lines at x0 + k * P give phase -2 pi x0 / P: the paper's local offset is -phase * P / (2 pi)
    phase = np.unwrap(np.angle(z[span]))
    offset = -phase * period_px / (2.0 * np.pi)
    xs = x[span]
    # columns without a trustworthy phase: the reliable ones' straight trend plus their nearest residual
    slope, intercept = fit_line(xs[strong], offset[strong])
    trend = slope * xs + intercept
    offset = trend + np.interp(xs, xs[strong], offset[strong] - trend[strong])
    return xs, offset


def _demodulate(profile: np.ndarray, cycles_per_px: Sequence[float], sigma: float) -> np.ndarray:
    """Complex amplitudes (one row per frequency) of ``profile``'s components at ``cycles_per_px``, in a Gaussian
    window of ``sigma`` px: all real and imaginary parts smoothed in one call (each line alone, so the same values
    as a call per part)."""
    mixed = profile * np.exp(-2j * np.pi * np.asarray(cycles_per_px)[:, None] * np.arange(profile.size))
    smooth = gaussian_smooth(np.concatenate([mixed.real, mixed.imag]), sigma)
    return smooth[: len(mixed)] + 1j * smooth[len(mixed) :]


def _phase(
    grid: np.ndarray, ink: np.ndarray, window: tuple[int, int, float, float, float], cache: dict | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_row_phase` of ``window``, looked up in (and added to) ``cache`` when given: one page's callers
    share one, since the time-axis fit and the shift correction read the same rows of the same grid and ink."""
    if cache is None:
        return _row_phase(grid, ink, *window)
    if window not in cache:
        cache[window] = _row_phase(grid, ink, *window)
    return cache[window]


def grid_scale(
    grid: np.ndarray,
    ink: np.ndarray,
    y_lo: int,
    y_hi: int,
    period_px: float,
    x_left: float,
    x_right: float,
    *,
    cache: dict | None = None,
) -> float | None:
    """The grid's own scale (px per mm) along a row, from the drift of its phase against ``period_px``.

    ``cache``: a dict kept for one page's ``grid`` and ``ink`` (see :func:`_phase`)."""
    got = _phase(grid, ink, (y_lo, y_hi, period_px, x_left, x_right), cache)
    if got is None:
        return None
    slope = fit_line(got[0], got[1])[0]  # offset drifts by 1 - P / P_true per px
    return float(period_px / (1.0 - slope) / GRID_MAJOR_MM) if slope < 0.5 else None


def row_shift(
    grid: np.ndarray,
    ink: np.ndarray,
    y_lo: int,
    y_hi: int,
    period_px: float,
    x_left: float,
    x_right: float,
    *,
    cache: dict | None = None,
) -> np.ndarray | None:
    """Per image column, how far (px, + = right) the paper in rows ``y_lo:y_hi`` sits from the straight line
    through ``x_left`` and ``x_right`` (the row's trace ends); None when the grid is too weak to tell.

    ``cache``: as for :func:`grid_scale`."""
    got = _phase(grid, ink, (y_lo, y_hi, period_px, x_left, x_right), cache)
    if got is None:
        return None
    xs, offset = got
    w = grid.shape[1]
    lo, hi = int(xs[0]), int(xs[-1])
    # the row's ends fix its straight time axis
    ends = np.interp([x_left, x_right], xs, offset)
    line = ends[0] + (xs - x_left) * (ends[1] - ends[0]) / max(x_right - x_left, 1.0)
    shift = offset - line
    px_per_mm = period_px / GRID_MAJOR_MM
    biggest = np.abs(shift).max()
    if biggest > MAX_SHIFT_MM * px_per_mm or biggest < MIN_SHIFT_MM * px_per_mm:
        return None
    out = np.zeros(w)
    out[lo : hi + 1] = shift
    out[:lo], out[hi + 1 :] = shift[0], shift[-1]
    return out


def smooth_across_rows(shifts: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """Each row's shift as the median of its own and its neighbours' (paper moves smoothly down the page;
    a pen mark over one row's grid does not)."""
    out: list[np.ndarray | None] = []
    for r, own in enumerate(shifts):
        near = [s for s in shifts[max(0, r - 1) : r + 2] if s is not None]
        out.append(None if own is None else np.median(np.stack(near), axis=0) if len(near) >= 3 else own)
    return out
