"""Write rendered printout images next to a WFDB record's header."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from derc.fileio import write_png_atomic
from derc.labels import LEADS
from derc.render import NoiseConfig, render_ecg


def write_record_images(
    record_path: str | Path,
    signal: np.ndarray,
    fs: float,
    *,
    count: int = 1,
    rng: np.random.Generator,
    layouts: Sequence[str] = ("3x4",),
    dpi: float = 200.0,
    noise: NoiseConfig | None = None,
    leads: Sequence[str] = LEADS,
) -> list[str]:
    """Render ``count`` noisy printouts as ``<record>-<n>.png``; return their file names (for ``# Image:``).

    ``record_path`` is the header path without extension; each image's layout is drawn from ``layouts``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not layouts:
        raise ValueError("layouts must not be empty")
    base = Path(record_path)
    names = []
    for n in range(count):
        layout = layouts[int(rng.integers(0, len(layouts)))]
        rendering = render_ecg(signal, fs, leads=leads, layout=layout, dpi=dpi, rng=rng, noise=noise)
        name = f"{base.name}-{n}.png"
        write_png_atomic(base.with_name(name), rendering.noisy)
        names.append(name)
    return names
