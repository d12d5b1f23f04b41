"""CLI: python -m derc.synth -o DIR -n N -s SEED [--fs 500] [--balanced] [--images K] [--layout L] [--dpi 200]."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from derc.synth.dataset import ImageWriter, write_dataset

LAYOUT_CHOICES = ("3x4", "6x2", "12x1", "mixed")


def _image_writer(count: int, layout: str, dpi: float) -> ImageWriter:
    """Wrap the renderer (imported lazily: signal-only datasets do not need it)."""
    from derc.render import write_record_images

    layouts = ("3x4", "6x2", "12x1") if layout == "mixed" else (layout,)

    def write(record_path: Path, signal: np.ndarray, fs: int, rng: np.random.Generator) -> list[str]:
        return write_record_images(record_path, signal, fs, count=count, rng=rng, layouts=layouts, dpi=dpi)

    return write


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m derc.synth", description="Write synthetic 12-lead ECG records.")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    parser.add_argument("-n", "--num", required=True, type=int, help="number of records")
    parser.add_argument("-s", "--seed", required=True, type=int)
    parser.add_argument("--fs", type=int, default=500, help="sampling frequency (Hz)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per record")
    parser.add_argument("--balanced", action="store_true", help="oversample rare labels")
    parser.add_argument("--images", type=int, default=0, help="paper images per record")
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default="mixed")
    parser.add_argument("--dpi", type=float, default=200.0)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    writer = None
    if args.images > 0:
        try:
            writer = _image_writer(args.images, args.layout, args.dpi)
        except ImportError as err:
            print(f"error: image rendering is unavailable (derc.render could not be imported: {err})", file=sys.stderr)
            return 2
    names = write_dataset(
        args.output,
        args.num,
        seed=args.seed,
        fs=args.fs,
        duration_s=args.duration,
        balanced=args.balanced,
        image_writer=writer,
        progress=not args.quiet,
    )
    print(f"wrote {len(names)} records to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
