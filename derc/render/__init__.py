"""ECG-paper rendering: a noisy photo-like image and its pixel-aligned clean target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from derc.labels import LEADS
from derc.render.distort import NoiseConfig, distort
from derc.render.layout import LAYOUTS, page_layout, page_size_px
from derc.render.paper import GridColour, draw_page

DEFAULT_SEED = 20240101


@dataclass(frozen=True)
class Rendering:
    """A rendered printout: ``noisy`` (H, W, 3) uint8 RGB, ``clean`` (H, W) uint8 (>= 250 is background)."""

    noisy: np.ndarray
    clean: np.ndarray
    page_to_image: np.ndarray  # 3x3: undistorted page pixels -> output image pixels
    layout: str
    dpi: float


def render_ecg(
    signal: np.ndarray,
    fs: float,
    *,
    leads: Sequence[str] = LEADS,
    layout: str = "3x4",
    dpi: float = 200.0,
    rng: np.random.Generator | None = None,
    noise: NoiseConfig | None = None,
    header_lines: Sequence[str] = (),
    grid: GridColour = "mixed",
) -> Rendering:
    """Draw ``signal`` ((samples, leads) in mV, NaN = not drawn) as a printout photo and its clean target.

    ``grid`` picks the grid colour (:func:`derc.render.paper.grid_colours`); ``"mixed"`` draws one per page.
    """
    rng = np.random.default_rng(DEFAULT_SEED) if rng is None else rng
    noise = NoiseConfig() if noise is None else noise
    page = draw_page(signal, fs, leads=leads, layout=layout, dpi=dpi, rng=rng, header_lines=header_lines, grid=grid)
    noisy, clean, homography = distort(page.paper, page.trace, rng, noise, dpi)
    return Rendering(noisy=noisy, clean=clean, page_to_image=homography, layout=layout, dpi=float(dpi))


# records imports render_ecg from this package, so it is imported once render_ecg exists
from derc.render.records import write_record_images  # noqa: E402

__all__ = [
    "LAYOUTS",
    "GridColour",
    "NoiseConfig",
    "Rendering",
    "page_layout",
    "page_size_px",
    "render_ecg",
    "write_record_images",
]
