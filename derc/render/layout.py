"""Page geometry of an ECG printout, in millimetres, shared by the renderer and the digitizer.

The page is US letter in landscape (279.4 x 215.9 mm). Paper runs at 25 mm/s and 10 mm/mV.
A *panel* is one lead drawn over a time window: its first sample sits at ``x_mm`` and its
0 mV baseline at ``y_mm`` (y grows downwards, as in image coordinates).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from derc.labels import LEADS

PAGE_WIDTH_MM = 279.4
PAGE_HEIGHT_MM = 215.9
MM_PER_INCH = 25.4
PAPER_SPEED_MM_PER_S = 25.0
GAIN_MM_PER_MV = 10.0
# Where the traces start (the 1 mV calibration pulse is drawn just left of it).
TRACE_LEFT_MM = 20.0
TRACE_WIDTH_MM = 250.0  # 10 s at 25 mm/s
CALIBRATION_WIDTH_MM = 5.0  # 0.2 s pulse
HEADER_HEIGHT_MM = 30.0  # printed header text lives above this line

LAYOUTS: tuple[str, ...] = ("3x4", "6x2", "12x1")
DEFAULT_LAYOUT = "3x4"


@dataclass(frozen=True)
class Panel:
    lead: str
    t_start: float  # seconds into the record
    t_end: float
    x_mm: float  # x of t_start
    y_mm: float  # 0 mV baseline
    row: int
    column: int

    @property
    def width_mm(self) -> float:
        return (self.t_end - self.t_start) * PAPER_SPEED_MM_PER_S


@dataclass(frozen=True)
class PageLayout:
    name: str
    panels: tuple[Panel, ...]
    row_pitch_mm: float
    rows: int

    def row_baselines_mm(self) -> list[float]:
        return sorted({p.y_mm for p in self.panels})


def _grid(name: str, columns: list[list[str]], seconds: float, first_baseline: float, pitch: float) -> list[Panel]:
    panels = []
    for column, leads in enumerate(columns):
        for row, lead in enumerate(leads):
            t0 = column * seconds
            panels.append(
                Panel(
                    lead=lead,
                    t_start=t0,
                    t_end=t0 + seconds,
                    x_mm=TRACE_LEFT_MM + t0 * PAPER_SPEED_MM_PER_S,
                    y_mm=first_baseline + row * pitch,
                    row=row,
                    column=column,
                )
            )
    return panels


@functools.cache
def page_layout(name: str = DEFAULT_LAYOUT) -> PageLayout:
    """Panels of a named layout: ``3x4`` (+ lead II rhythm strip), ``6x2`` or ``12x1``. Built once per name (a
    frozen value; building it cost ~50 us, and the digitizer asks for it several times a page)."""
    if name == "3x4":
        columns = [list(LEADS[i : i + 3]) for i in range(0, 12, 3)]
        pitch = 40.0
        panels = _grid(name, columns, 2.5, 62.0, pitch)
        panels.append(
            Panel(lead="II", t_start=0.0, t_end=10.0, x_mm=TRACE_LEFT_MM, y_mm=62.0 + 3 * pitch, row=3, column=0)
        )
        return PageLayout(name, tuple(panels), pitch, 4)
    if name == "6x2":
        pitch = 26.0
        return PageLayout(name, tuple(_grid(name, [list(LEADS[:6]), list(LEADS[6:])], 5.0, 56.0, pitch)), pitch, 6)
    if name == "12x1":
        pitch = 14.5
        return PageLayout(name, tuple(_grid(name, [list(LEADS)], 10.0, 42.0, pitch)), pitch, 12)
    raise ValueError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUTS)}")


def px_per_mm(dpi: float) -> float:
    return dpi / MM_PER_INCH


def page_size_px(dpi: float) -> tuple[int, int]:
    """(height, width) in pixels of the page at ``dpi`` (200 dpi -> 1700 x 2200)."""
    return round(PAGE_HEIGHT_MM * px_per_mm(dpi)), round(PAGE_WIDTH_MM * px_per_mm(dpi))


def dpi_for_width(width_px: int) -> float:
    """The dpi at which the page is ``width_px`` pixels wide."""
    return width_px / (PAGE_WIDTH_MM / MM_PER_INCH)


# --- Additions for the renderer (pixel convention, label and calibration-pulse positions) ---

CALIBRATION_PULSE_MV = 1.0
CALIBRATION_LEFT_MM = TRACE_LEFT_MM - CALIBRATION_WIDTH_MM - 2.0  # flat 1 mm, pulse 5 mm, flat 1 mm
LABEL_OFFSET_X_MM = 1.0  # lead label starts this far right of the panel start
GRID_MINOR_MM = 1.0
GRID_MAJOR_MM = 5.0


def mm_to_px(value_mm: float, dpi: float) -> float:
    """Page millimetres to pixel coordinates; pixel ``i``'s centre is at coordinate ``i``."""
    return value_mm * px_per_mm(dpi)


def lead_label_position_mm(panel: Panel, row_pitch_mm: float) -> tuple[float, float]:
    """(x, y) in mm of the lead label's left end and text baseline, above the panel's start."""
    return panel.x_mm + LABEL_OFFSET_X_MM, panel.y_mm - min(7.0, 0.4 * row_pitch_mm)


def calibration_pulse_mm(y_mm: float) -> list[tuple[float, float]]:
    """Corner points (x, y) in mm of the 1 mV, 0.2 s calibration pulse left of a row at baseline ``y_mm``."""
    top = y_mm - CALIBRATION_PULSE_MV * GAIN_MM_PER_MV
    x0 = CALIBRATION_LEFT_MM
    x1, x2 = x0 + 1.0, x0 + 1.0 + CALIBRATION_WIDTH_MM
    return [(x0, y_mm), (x1, y_mm), (x1, top), (x2, top), (x2, y_mm), (TRACE_LEFT_MM, y_mm)]
