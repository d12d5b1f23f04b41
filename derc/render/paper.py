"""Draw an undistorted ECG printout: pink grid, traces, lead labels, calibration pulses and header text.

Everything is placed in page millimetres (see :mod:`derc.render.layout`) and converted with
:func:`~derc.render.layout.mm_to_px`, so any float dpi works. The grid is built from two 1-D
anti-aliased coverage profiles (one per axis); traces are ``cv2.polylines`` with ``LINE_AA`` on
sub-pixel (``shift``) integer coordinates.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from derc.labels import LEADS
from derc.render.layout import (
    GAIN_MM_PER_MV,
    GRID_MAJOR_MM,
    GRID_MINOR_MM,
    HEADER_HEIGHT_MM,
    PAGE_HEIGHT_MM,
    PAGE_WIDTH_MM,
    PAPER_SPEED_MM_PER_S,
    PageLayout,
    Panel,
    calibration_pulse_mm,
    lead_label_position_mm,
    mm_to_px,
    page_layout,
    page_size_px,
    px_per_mm,
)

SHIFT = 4  # sub-pixel bits for cv2 drawing
_SCALE = 1 << SHIFT
# grid colours a page can be drawn with; "mixed" draws one per page with the shares below
RGB = tuple[float, float, float]
GridColour = Literal["mixed", "red", "grey", "hue", "none"]
GRID_SHARES: dict[str, float] = {"red": 0.7, "grey": 0.15, "hue": 0.1, "none": 0.05}
FONT_NAMES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf")


@dataclass(frozen=True)
class PaperStyle:
    """Random-but-plausible look of one printout (colours in RGB 0..255, widths in mm)."""

    paper: RGB
    minor: RGB | None  # None: printed without a grid
    major: RGB | None
    ink: RGB
    minor_width_mm: float
    major_width_mm: float
    trace_width_mm: float
    font: str
    grid_top_mm: float
    separators: bool


def sample_style(rng: np.random.Generator, grid: GridColour = "mixed") -> PaperStyle:
    """Draw a paper style: its grid colour (see :func:`grid_colours`), black or dark-blue ink, line widths, font."""
    minor, major = grid_colours(rng, grid) or (None, None)
    paper_tone = rng.uniform(248, 255)
    paper = (paper_tone, paper_tone - rng.uniform(0, 3), paper_tone - rng.uniform(0, 6))
    ink = (0.0, 0.0, 0.0) if rng.random() < 0.7 else (10.0, 20.0, rng.uniform(60, 110))
    return PaperStyle(
        paper=paper,
        minor=minor,
        major=major,
        ink=ink,
        minor_width_mm=rng.uniform(0.08, 0.15),
        major_width_mm=rng.uniform(0.18, 0.3),
        trace_width_mm=rng.uniform(0.25, 0.45),
        font=str(rng.choice(FONT_NAMES)),
        grid_top_mm=float(rng.choice([0.0, HEADER_HEIGHT_MM - 5.0])),
        separators=bool(rng.random() < 0.8),
    )


def grid_colours(rng: np.random.Generator, grid: GridColour = "mixed") -> tuple[RGB, RGB] | None:
    """The (minor, major) grid line colours: a red/pink grid with a slightly varied hue, a grey one
    (black-and-white printers, photocopies) or one of another hue (green, blue, orange, violet papers);
    None for a page printed without a grid (ECG-Image-Kit draws such pages too).

    ``"mixed"`` draws the kind by :data:`GRID_SHARES`; a named kind draws no extra number, so seeded
    red pages are the same as before the mix existed. Trained on red grids alone, the UNet lost the trace
    on the blue- and green-grid pages of another renderer (``benchmarks/bench_foreign.py``).
    """
    if grid == "mixed":
        kinds = list(GRID_SHARES)
        grid = kinds[int(rng.choice(len(kinds), p=list(GRID_SHARES.values())))]
    if grid == "red":
        hue = rng.uniform(-0.03, 0.04) % 1.0
        major = _hsv(hue, rng.uniform(0.55, 0.85), rng.uniform(0.8, 1.0))
        return _hsv(hue, rng.uniform(0.2, 0.45), 1.0), major
    if grid == "grey":
        major = _hsv(0.0, 0.0, rng.uniform(0.45, 0.8))
        return _hsv(0.0, 0.0, rng.uniform(0.78, 0.92)), major
    if grid == "hue":
        hue = rng.uniform(0.06, 0.94)
        major = _hsv(hue, rng.uniform(0.5, 0.9), rng.uniform(0.6, 0.95))
        return _hsv(hue, rng.uniform(0.15, 0.4), 1.0), major
    if grid == "none":
        rng.uniform(size=4)  # a hue grid's draws: a seeded page's other draws stay as they were before the kind
        return None
    raise ValueError(f"grid must be one of mixed, {', '.join(GRID_SHARES)}; got {grid!r}")


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (255.0 * r, 255.0 * g, 255.0 * b)


# ----------------------------------------------------------------------------- grid


def line_coverage(n_px: int, ppm: float, period_mm: float, width_mm: float, lo_mm: float, hi_mm: float) -> np.ndarray:
    """Fraction (0..1) of each pixel covered by lines every ``period_mm`` (width ``width_mm``) in [lo, hi] mm."""
    sub = 8
    # pixel i covers [i - 0.5, i + 0.5) in pixel coordinates; sample it at ``sub`` points
    centres = (np.arange(n_px * sub, dtype=np.float64) + 0.5) / sub - 0.5
    mm = centres / ppm
    dist = np.abs((mm + 0.5 * period_mm) % period_mm - 0.5 * period_mm)
    half = 0.5 * max(width_mm, 0.0)
    inside = (dist <= half) & (mm >= lo_mm - half) & (mm <= hi_mm + half)
    cover = inside.reshape(n_px, sub).mean(axis=1)
    if width_mm * ppm < 1.0 / sub:  # thinner than the sampling: spread its ink evenly
        near = (dist <= 0.5 / ppm) & (mm >= lo_mm) & (mm <= hi_mm)
        cover = near.reshape(n_px, sub).mean(axis=1) * min(1.0, width_mm * ppm)
    return cover.astype(np.float32)


def _transmission(n_px: int, ppm: float, style: PaperStyle, lo_mm: float, hi_mm: float) -> np.ndarray:
    """Per-pixel, per-channel fraction of light the grid lines along one axis let through, shape (n, 3)."""
    out = np.ones((n_px, 3), dtype=np.float32)
    for period, width, colour in (
        (GRID_MINOR_MM, style.minor_width_mm, style.minor),
        (GRID_MAJOR_MM, style.major_width_mm, style.major),
    ):
        if colour is None:
            continue
        cover = line_coverage(n_px, ppm, period, width, lo_mm, hi_mm)
        absorb = 1.0 - np.asarray(colour, dtype=np.float32) / np.asarray(style.paper, dtype=np.float32)
        out *= 1.0 - cover[:, None] * np.clip(absorb, 0.0, 1.0)[None, :]
    return out


def draw_grid(shape: tuple[int, int], dpi: float, style: PaperStyle) -> np.ndarray:
    """RGB float32 page (0..255) with the paper colour and the 1 mm / 5 mm grid."""
    h, w = shape
    ppm = px_per_mm(dpi)
    x_lo, x_hi = 5.0, PAGE_WIDTH_MM - 4.4
    y_lo, y_hi = max(style.grid_top_mm, 5.0), PAGE_HEIGHT_MM - 5.9
    tx = _transmission(w, ppm, style, x_lo, x_hi)
    ty = _transmission(h, ppm, style, y_lo, y_hi)
    paper = np.asarray(style.paper, dtype=np.float32)
    r0, r1 = max(0, int(np.floor(mm_to_px(y_lo, dpi) - 2))), min(h, int(np.ceil(mm_to_px(y_hi, dpi) + 3)))
    c0, c1 = max(0, int(np.floor(mm_to_px(x_lo, dpi) - 2))), min(w, int(np.ceil(mm_to_px(x_hi, dpi) + 3)))
    lit = tx[c0:c1] * paper
    # one channel at a time: numpy broadcasting (H, 1, 3) against (1, W, 3) runs its loops 3 values at a time,
    # 2-3x slower at 70-200 dpi than a row's worth per channel (the same products)
    page = np.empty((h, w, 3), dtype=np.float32)
    for ch in range(3):
        plane = page[..., ch]
        plane[:r0], plane[r1:], plane[r0:r1, :c0], plane[r0:r1, c1:] = (paper[ch],) * 4  # margins: bare paper
        # vertical lines only within the grid's rows, horizontal only within its columns
        np.multiply(ty[r0:r1, ch, None], lit[None, :, ch], out=plane[r0:r1, c0:c1])
    return page


# ----------------------------------------------------------------------------- traces


def _to_fixed(x_px: np.ndarray, y_px: np.ndarray) -> np.ndarray:
    pts = np.stack([x_px, y_px], axis=-1) * _SCALE
    return np.round(pts).astype(np.int32)


def _finite_runs(points: np.ndarray, finite: np.ndarray) -> list[np.ndarray]:
    """Split an (n, 2) int array into runs of consecutive finite samples (NaN samples are not drawn)."""
    if finite.all():
        return [points]
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    return [points[a:b] for a, b in zip(edges[::2], edges[1::2])]


def _thickness(width_mm: float, dpi: float) -> int:
    return max(1, round(width_mm * px_per_mm(dpi)))


def panel_polylines(panel: Panel, column: np.ndarray, fs: float, dpi: float) -> list[np.ndarray]:
    """Fixed-point polylines (``SHIFT`` bits) of one lead's samples inside the panel's time window."""
    n = column.shape[0]
    i0 = max(0, int(np.ceil(panel.t_start * fs - 1e-9)))
    i1 = min(n, int(np.ceil(panel.t_end * fs - 1e-9)))
    if i1 <= i0:
        return []
    t = np.arange(i0, i1, dtype=np.float64) / fs
    values = np.asarray(column[i0:i1], dtype=np.float64)
    finite = np.isfinite(values)
    x_mm = panel.x_mm + (t - panel.t_start) * PAPER_SPEED_MM_PER_S
    y_mm = panel.y_mm - np.where(finite, values, 0.0) * GAIN_MM_PER_MV
    pts = _to_fixed(mm_to_px(1.0, dpi) * x_mm, mm_to_px(1.0, dpi) * y_mm)
    runs = _finite_runs(pts, finite)
    return [r if len(r) > 1 else np.repeat(r, 2, axis=0) for r in runs]


def lead_columns(leads: Sequence[str]) -> dict[str, int]:
    """Map lower-cased lead name -> signal column."""
    return {str(name).strip().lower(): i for i, name in enumerate(leads)}


def draw_traces(
    mask: np.ndarray,
    signal: np.ndarray,
    fs: float,
    leads: Sequence[str],
    layout: PageLayout,
    dpi: float,
    width_mm: float,
) -> None:
    """Draw every panel's trace (255 = ink) into the uint8 ``mask`` in place."""
    columns = lead_columns(leads)
    lines: list[np.ndarray] = []
    for panel in layout.panels:
        col = columns.get(panel.lead.lower())
        if col is not None:
            lines.extend(panel_polylines(panel, signal[:, col], fs, dpi))
    if lines:
        cv2.polylines(mask, lines, False, 255, _thickness(width_mm, dpi), cv2.LINE_AA, SHIFT)


def draw_print_marks(mask: np.ndarray, layout: PageLayout, dpi: float, style: PaperStyle) -> None:
    """Calibration pulses left of each row and short separators between panels of a row."""
    ppm = px_per_mm(dpi)
    thick = _thickness(style.trace_width_mm, dpi)
    lines = []
    for y in layout.row_baselines_mm():
        pts = np.asarray(calibration_pulse_mm(y), dtype=np.float64) * ppm
        lines.append(_to_fixed(pts[:, 0], pts[:, 1]))
    if style.separators:
        for panel in layout.panels:
            if panel.column > 0:
                x = np.array([panel.x_mm, panel.x_mm]) * ppm
                y = np.array([panel.y_mm - 3.0, panel.y_mm + 3.0]) * ppm
                lines.append(_to_fixed(x, y))
    cv2.polylines(mask, lines, False, 255, thick, cv2.LINE_AA, SHIFT)


# ----------------------------------------------------------------------------- text


@functools.lru_cache(maxsize=64)
def font(name: str, size_px: int) -> ImageFont.FreeTypeFont:
    """A DejaVu font shipped with matplotlib (works offline)."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    return ImageFont.truetype(str(path), max(1, size_px))


def draw_text(mask: np.ndarray, text: str, x_px: float, baseline_px: float, size_px: float, font_name: str) -> None:
    """Blend ``text`` (left end, baseline) into the uint8 ink ``mask`` by maximum."""
    f = font(font_name, max(1, round(size_px)))
    left, top, right, bottom = f.getbbox(text, anchor="ls")
    w, h = right - left + 2, bottom - top + 2
    if w <= 2 or h <= 2:
        return
    tile = Image.new("L", (w, h), 0)
    ImageDraw.Draw(tile).text((1 - left, 1 - top), text, fill=255, font=f, anchor="ls")
    x0, y0 = round(x_px) + left - 1, round(baseline_px) + top - 1
    _blend_max(mask, np.asarray(tile), x0, y0)


def _blend_max(mask: np.ndarray, tile: np.ndarray, x0: int, y0: int) -> None:
    h, w = mask.shape
    th, tw = tile.shape
    a0, b0 = max(0, -y0), max(0, -x0)
    a1, b1 = min(th, h - y0), min(tw, w - x0)
    if a1 <= a0 or b1 <= b0:
        return
    region = mask[y0 + a0 : y0 + a1, x0 + b0 : x0 + b1]
    np.maximum(region, tile[a0:a1, b0:b1], out=region)


def estimate_rate(signal: np.ndarray, fs: float, leads: Sequence[str]) -> int | None:
    """Rough heart rate (bpm) from the strongest lead's R peaks, or None."""
    from scipy.signal import find_peaks

    if signal.shape[0] < 2 * fs:
        return None
    cols = lead_columns(leads)
    col = signal[:, cols.get("ii", 0)]
    col = np.where(np.isfinite(col), col, np.nanmedian(col) if np.isfinite(col).any() else 0.0)
    slope = np.abs(np.diff(col))
    if slope.max() <= 0:
        return None
    peaks, _ = find_peaks(slope, height=0.5 * np.percentile(slope, 99.5), distance=max(1, int(0.3 * fs)))
    if len(peaks) < 2:
        return None
    rate = 60.0 * fs / float(np.median(np.diff(peaks)))
    return round(rate) if 20 <= rate <= 250 else None


def generate_header(rng: np.random.Generator, rate: int | None) -> list[str]:
    """Plausible printed header lines (ids, date, measurements; no diagnostic statements)."""
    rate = rate if rate is not None else int(rng.integers(50, 110))
    qt = int(rng.integers(340, 440))
    qtc = int(qt / np.sqrt(60.0 / max(rate, 20)))
    day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), int(rng.integers(1989, 2024))
    hh, mm, ss = (int(v) for v in rng.integers(0, [24, 60, 60]))
    sex = str(rng.choice(["Male", "Female"]))
    return [
        f"ID: {int(rng.integers(10000, 99999999)):08d}    {day:02d}-{month:02d}-{year} {hh:02d}:{mm:02d}:{ss:02d}",
        f"{int(rng.integers(18, 95))} yrs   {sex}   {int(rng.integers(150, 200))} cm   {int(rng.integers(45, 120))} kg",
        f"Vent. rate {rate} BPM    PR interval {int(rng.integers(120, 210))} ms    "
        f"QRS duration {int(rng.integers(70, 120))} ms",
        f"QT/QTc {qt}/{qtc} ms    P-R-T axes {int(rng.integers(-30, 90))} {int(rng.integers(-30, 100))} "
        f"{int(rng.integers(-30, 90))}",
    ]


def draw_labels_and_header(
    mask: np.ndarray, layout: PageLayout, dpi: float, style: PaperStyle, header_lines: Sequence[str]
) -> None:
    """Lead labels near each panel start, header lines at the top and a speed/gain footer."""
    ppm = px_per_mm(dpi)
    label_px = 3.2 * ppm  # ~9 pt
    for panel in layout.panels:
        x, y = lead_label_position_mm(panel, layout.row_pitch_mm)
        draw_text(mask, panel.lead, x * ppm, y * ppm, label_px, style.font)
    line_px = 3.0 * ppm
    for i, line in enumerate(header_lines):
        draw_text(mask, line, 10.0 * ppm, (8.0 + 4.5 * i) * ppm, line_px, style.font)
    footer = f"{PAPER_SPEED_MM_PER_S:g} mm/s   {GAIN_MM_PER_MV:g} mm/mV   0.05-150 Hz"
    draw_text(mask, footer, 10.0 * ppm, (PAGE_HEIGHT_MM - 2.0) * ppm, 2.6 * ppm, style.font)


# ----------------------------------------------------------------------------- page


def composite_ink(page: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Lay ``colour`` over the float RGB ``page`` with opacity ``mask``/255, in place (only inked pixels)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return
    flat = page.reshape(-1, 3)
    alpha = mask.reshape(-1)[idx].astype(np.float32)[:, None] * (1.0 / 255.0)
    pixels = flat[idx]
    flat[idx] = pixels + alpha * (colour - pixels)


@dataclass(frozen=True)
class Page:
    """An undistorted printout: ``paper`` RGB float32 (0..255) and ``trace`` uint8 ink mask (255 = ink)."""

    paper: np.ndarray
    trace: np.ndarray
    style: PaperStyle


def draw_page(
    signal: np.ndarray,
    fs: float,
    *,
    leads: Sequence[str] = LEADS,
    layout: str = "3x4",
    dpi: float = 200.0,
    rng: np.random.Generator,
    header_lines: Sequence[str] = (),
    grid: GridColour = "mixed",
) -> Page:
    """Render the undistorted printout and the waveform-only ink mask on the same geometry."""
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim == 1:
        signal = signal[:, None]
    if signal.ndim != 2 or signal.shape[1] != len(leads):
        raise ValueError(f"signal must be (samples, {len(leads)}) for leads {list(leads)}, got {signal.shape}")
    if fs <= 0:
        raise ValueError(f"fs must be positive, got {fs}")
    geometry = page_layout(layout)
    shape = page_size_px(dpi)
    style = sample_style(rng, grid)
    trace = np.zeros(shape, dtype=np.uint8)
    draw_traces(trace, signal, fs, leads, geometry, dpi, style.trace_width_mm)
    ink = trace.copy()
    draw_print_marks(ink, geometry, dpi, style)
    lines = list(header_lines) if header_lines else generate_header(rng, estimate_rate(signal, fs, leads))
    draw_labels_and_header(ink, geometry, dpi, style, lines)
    paper = draw_grid(shape, dpi, style)
    composite_ink(paper, ink, np.asarray(style.ink, dtype=np.float32))
    return Page(paper=paper, trace=trace, style=style)
