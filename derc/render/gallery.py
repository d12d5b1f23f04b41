"""Contact sheet of rendered noisy/clean pairs: ``python -m derc.render.gallery -o docs/gallery.png``."""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from derc.fileio import atomic_path
from derc.render import NoiseConfig, render_ecg
from derc.render.layout import LAYOUTS, dpi_for_width


def demo_signal(rng: np.random.Generator, fs: float = 500.0, duration_s: float = 10.0) -> np.ndarray:
    """A simple 12-lead ECG-like signal (samples, 12) in mV: Gaussian P/QRS/T waves on a wandering baseline."""
    n = round(fs * duration_s)
    t = np.arange(n) / fs
    rr = 60.0 / rng.uniform(50, 110)
    beats = np.arange(rng.uniform(0, rr), duration_s + rr, rr) + rng.normal(0, 0.02 * rr, size=1)
    waves = np.array([[-0.2, 0.025], [-0.03, 0.01], [0.0, 0.012], [0.03, 0.01], [0.28, 0.05]])  # offset, width
    shapes = np.exp(-(((t[:, None, None] - beats[None, :, None] - waves[None, None, :, 0]) / waves[:, 1]) ** 2) / 2)
    per_wave = shapes.sum(axis=1)  # (n, 5)
    base = np.array([0.15, -0.15, 1.0, -0.3, 0.3])
    gains = base[None, :] * rng.uniform(-1.0, 1.5, size=(12, 5)) * np.array([1, 1, 1.2, 1, 1])
    gains[:, 2] = rng.uniform(-1.5, 1.8, size=12)
    wander = 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t[:, None] + rng.uniform(0, 6.3, size=12))
    return per_wave @ gains.T + wander + rng.normal(0, 0.01, size=(n, 12))


def example_signal(rng: np.random.Generator, fs: float = 500.0, duration_s: float = 10.0) -> np.ndarray:
    """A signal from :mod:`derc.synth` when it is available, else :func:`demo_signal`."""
    try:
        from derc.synth import sample_labels, synthesize
    except ImportError:
        return demo_signal(rng, fs, duration_s)
    return np.asarray(synthesize(sample_labels(rng), rng=rng, fs=fs, duration_s=duration_s), dtype=np.float64)


def contact_sheet(
    *,
    rng: np.random.Generator,
    layouts: Sequence[str] = LAYOUTS,
    per_layout: int = 2,
    width: int = 440,
    level: float = 1.0,
    gap: int = 6,
) -> np.ndarray:
    """RGB sheet: one row per layout, ``per_layout`` noisy/clean pairs per row, each image ``width`` px wide."""
    dpi = dpi_for_width(width)
    rows = []
    for layout in layouts:
        tiles = []
        for _ in range(per_layout):
            r = render_ecg(
                example_signal(rng), 500.0, layout=layout, dpi=dpi, rng=rng, noise=NoiseConfig().scaled(level)
            )
            tiles += [r.noisy, np.repeat(r.clean[..., None], 3, axis=2)]
        h = tiles[0].shape[0]
        spacer = np.full((h, gap, 3), 40, dtype=np.uint8)
        rows.append(np.concatenate([x for tile in tiles for x in (tile, spacer)][:-1], axis=1))
    spacer = np.full((gap, rows[0].shape[1], 3), 40, dtype=np.uint8)
    return np.concatenate([x for row in rows for x in (row, spacer)][:-1], axis=0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    parser.add_argument("--per-layout", type=int, default=2, help="noisy/clean pairs per layout")
    parser.add_argument("--width", type=int, default=440, help="width in px of each image")
    parser.add_argument("--level", type=float, default=1.0, help="noise level (0 = clean paper)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--colors", type=int, default=256, help="palette size to keep the PNG small (0 = full RGB)")
    args = parser.parse_args(argv)
    sheet = contact_sheet(
        rng=np.random.default_rng(args.seed),
        layouts=args.layouts,
        per_layout=args.per_layout,
        width=args.width,
        level=args.level,
    )
    image = Image.fromarray(sheet)
    if args.colors:
        image = image.quantize(colors=args.colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    with atomic_path(args.output) as tmp:
        tmp.write_bytes(buffer.getvalue())
    print(f"wrote {args.output} ({sheet.shape[1]}x{sheet.shape[0]}, {buffer.tell() / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
