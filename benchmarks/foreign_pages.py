"""Printouts drawn by a second, independent renderer, for judging models on pages they were not tuned to.

Nothing here comes from ``derc.render``: the page is plotted with matplotlib (as ECG-Image-Kit plots its
pages), in its own geometry (where the rows sit, their spacing, where the traces start, where the lead names
go are drawn per page, not the package's fixed layouts), its own grid colours (red, grey, blue, green, ...),
fonts, line widths and header text, and then photographed by its own, simpler degradations (rotation, uneven
light, blur, sensor noise, JPEG). Only the ECG conventions are shared: US letter landscape, 25 mm/s, 10 mm/mV,
and the standard lead arrangements (3x4 with a lead II rhythm strip, 6x2), each panel showing its lead over
the standard time window.

    python benchmarks/foreign_pages.py --out /tmp/foreign.png     # one page, to look at
"""

from __future__ import annotations

import argparse
import colorsys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
WIDTH_MM, HEIGHT_MM = 279.4, 215.9  # US letter, landscape
MM_PER_S, MM_PER_MV = 25.0, 10.0
POINTS_PER_MM = 72.0 / 25.4


@dataclass(frozen=True)
class Drawn:
    """What a foreign page shows, for breaking its scores down."""

    geometry: Geometry
    grid: str  # red, grey, hue or none
    ink: str  # black or blue


@dataclass(frozen=True)
class Geometry:
    """Where one page's panels go: rows' 0 mV baselines (mm from the top) and the traces' left edge."""

    layout: str
    baselines_mm: tuple[float, ...]
    left_mm: float
    columns: int
    seconds: float  # per column


def sample_geometry(rng: np.random.Generator, layout: str) -> Geometry:
    """Row positions and spacing drawn per page (the package's own layouts fix them)."""
    if layout == "3x4":
        rows, columns, pitch, first = 4, 4, rng.uniform(33.0, 46.0), rng.uniform(40.0, 72.0)
    elif layout == "6x2":
        rows, columns, pitch, first = 6, 2, rng.uniform(22.0, 29.0), rng.uniform(35.0, 60.0)
    else:
        raise ValueError(f"foreign pages draw 3x4 or 6x2, not {layout!r}")
    first = min(first, HEIGHT_MM - 12.0 - (rows - 1) * pitch)  # the last row stays on the page
    left = rng.uniform(12.0, WIDTH_MM - 10.0 * MM_PER_S - 5.0)
    return Geometry(layout, tuple(first + r * pitch for r in range(rows)), left, columns, 10.0 / columns)


def panels(geo: Geometry) -> list[tuple[str, int, float]]:
    """(lead, row, start in s) of each panel; a 3x4 page's last row is lead II over all 10 s."""
    per_column = 12 // geo.columns
    out = [(LEADS[c * per_column + r], r, c * geo.seconds) for c in range(geo.columns) for r in range(per_column)]
    if geo.layout == "3x4":
        out.append(("II", 3, -1.0))  # -1: the whole record
    return out


def _colour(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


GRID_KINDS = ("red", "red", "grey", "hue", "none")  # "hue": any hue but red (blue, green, orange, violet ...)


def sample_grid_colours(rng: np.random.Generator) -> tuple[str, tuple[tuple[float, ...], tuple[float, ...]] | None]:
    """The grid's kind and its (major, minor) colours, None for a page printed without grid."""
    kind = str(rng.choice(GRID_KINDS, p=[0.35, 0.15, 0.2, 0.25, 0.05]))
    if kind == "none":
        return kind, None
    if kind == "grey":
        g = rng.uniform(0.35, 0.6)
        return kind, ((g, g, g), (min(1.0, g + 0.3),) * 3)
    hue = rng.uniform(-0.02, 0.03) if kind == "red" else rng.uniform(0.08, 0.92)
    major = _colour(hue, rng.uniform(0.6, 0.95), rng.uniform(0.7, 0.95))
    return kind, (major, _colour(hue, rng.uniform(0.15, 0.35), 1.0))


def _header_lines(rng: np.random.Generator) -> list[str]:
    sex = rng.choice(["M", "F"])
    lines = [
        f"Name: {''.join(rng.choice(list('ABCDEFGHJKLMNPRSTW'), 6))}   ID: {rng.integers(10**6, 10**7)}",
        f"Age: {rng.integers(18, 95)} y   Sex: {sex}   Date: 20{rng.integers(10, 25):02d}-"
        f"{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}",
        f"Vent. rate {rng.integers(40, 160)} BPM   PR {rng.integers(110, 240)} ms   QRS {rng.integers(70, 160)} ms",
        "25 mm/s   10 mm/mV   0.05-150 Hz",
    ]
    return lines[: int(rng.integers(0, len(lines) + 1))]


def draw_page(
    signal: np.ndarray, fs: float, *, rng: np.random.Generator, layout: str = "3x4", dpi: float = 100.0
) -> tuple[np.ndarray, Drawn]:
    """An RGB uint8 page of ``signal`` (samples x 12 leads in LEADS order, mV) and what it shows."""
    geo = sample_geometry(rng, layout)
    fig = Figure(figsize=(WIDTH_MM / 25.4, HEIGHT_MM / 25.4), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    paper = tuple(rng.uniform(0.94, 1.0, 3)) if rng.random() < 0.5 else (1.0, 1.0, 1.0)
    fig.patch.set_facecolor(paper)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0.0, WIDTH_MM)
    ax.set_ylim(HEIGHT_MM, 0.0)  # mm from the top
    ax.set_axis_off()
    ax.set_facecolor(paper)

    grid_kind, grid = sample_grid_colours(rng)
    if grid is not None:
        major, minor = grid
        top = rng.uniform(0.0, max(1.0, geo.baselines_mm[0] - 25.0))
        for step, colour, width in ((1.0, minor, rng.uniform(0.1, 0.3)), (5.0, major, rng.uniform(0.3, 0.8))):
            xs = np.arange(0.0, WIDTH_MM, step)
            ys = np.arange(top, HEIGHT_MM, step)
            segments = [((x, top), (x, HEIGHT_MM)) for x in xs] + [((0.0, y), (WIDTH_MM, y)) for y in ys]
            ax.add_collection(LineCollection(segments, colors=[colour], linewidths=width, zorder=1))

    black = rng.random() < 0.75
    ink = (0.0, 0.0, 0.0) if black else (0.05, 0.1, rng.uniform(0.4, 0.7))
    trace_width = rng.uniform(0.5, 1.2)
    family = str(rng.choice(["sans-serif", "serif", "monospace"]))
    size = rng.uniform(8.0, 12.0)
    weight = "bold" if rng.random() < 0.3 else "normal"
    label_dy = rng.uniform(3.0, 8.0)
    label_dx = rng.uniform(0.5, 3.0)
    n = signal.shape[0]
    for lead, row, start in panels(geo):
        y0 = geo.baselines_mm[row]
        if start < 0:
            i0, i1, x0 = 0, n, geo.left_mm
        else:
            i0, i1 = round(start * fs), min(n, round((start + geo.seconds) * fs))
            x0 = geo.left_mm + start * MM_PER_S
        values = signal[i0:i1, LEADS.index(lead)]
        x = x0 + np.arange(values.size) / fs * MM_PER_S
        ax.plot(x, y0 - values * MM_PER_MV, color=ink, linewidth=trace_width, zorder=3, solid_capstyle="round")
        ax.text(x0 + label_dx, y0 - label_dy, lead, fontsize=size, family=family, weight=weight, color=ink, zorder=4)
        if start > 0 and rng.random() < 0.5:  # a column separator tick
            ax.plot([x0, x0], [y0 - 3.0, y0 + 3.0], color=ink, linewidth=trace_width, zorder=3)
    if rng.random() < 0.7:  # 1 mV, 0.2 s calibration pulses left of the rows
        px = geo.left_mm - rng.uniform(6.5, 9.0)
        for y0 in geo.baselines_mm:
            xs = [px, px + 1.0, px + 1.0, px + 6.0, px + 6.0, geo.left_mm - 0.5]
            ys = [y0, y0, y0 - 10.0, y0 - 10.0, y0, y0]
            ax.plot(xs, ys, color=ink, linewidth=trace_width, zorder=3)
    for i, line in enumerate(_header_lines(rng)):
        ax.text(12.0, 8.0 + 4.5 * i, line, fontsize=rng.uniform(7.0, 10.0), family=family, color=ink, va="top")

    canvas.draw()
    page = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    return photograph(page, rng), Drawn(geo, grid_kind, "black" if black else "blue")


def photograph(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A simple camera/scanner: small rotation, uneven light, blur, sensor noise, JPEG (each on or off)."""
    h, w = page.shape[:2]
    out = page.astype(np.float32)
    if rng.random() < 0.7:
        turn = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), rng.uniform(-3.0, 3.0), 1.0)
        border = tuple(float(v) for v in rng.uniform(120, 230, 3))
        out = cv2.warpAffine(out, turn, (w, h), flags=cv2.INTER_LINEAR, borderValue=border)
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * xx / w + np.sin(angle) * yy / h
        light = 1.0 - rng.uniform(0.05, 0.3) * (ramp - ramp.min()) / max(1e-6, np.ptp(ramp))
        out *= light[..., None]
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.0) * w / 1100.0)
    if rng.random() < 0.5:
        out += rng.normal(0.0, rng.uniform(2.0, 7.0), out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        _, buffer = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 92))])
        out = cv2.imdecode(buffer, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--layout", default="3x4", choices=("3x4", "6x2"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpi", type=float, default=100.0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    t = np.arange(5000) / 500.0
    beat = np.exp(-(((t % 0.8) - 0.3) ** 2) / 2e-4)
    signal = np.stack([beat * (0.5 + 0.1 * j) for j in range(12)], axis=1)
    page, _ = draw_page(signal, 500.0, rng=rng, layout=args.layout, dpi=args.dpi)
    cv2.imwrite(str(args.out), page[..., ::-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
