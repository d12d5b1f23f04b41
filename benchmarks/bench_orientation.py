"""Page orientation: how often ``orient_landscape`` turns a page the wrong way, and what it costs a page.

    python benchmarks/bench_orientation.py [--pages 300] [--seed 0] [--sides 1200,800,600]
    python benchmarks/bench_orientation.py --smoke      # 3 pages of each renderer (CI)

Photographed pages (100 dpi, 1100x850 px, as the accuracy benchmark's test pages) of label-conditioned
synthetic ECGs, drawn by the package's renderer (mixed layouts and grid colours, default noise) and by
``foreign_pages.py`` (an independent renderer: its own fonts, header, grid colours and photo degradations),
each shown upright and turned 90°, 180° and 270°. Counted per renderer and per analysis side (the page is
read shrunk to at most that many px along its longer side, ``derc.images.ANALYSIS_SIDE`` by default): upright
pages turned, 90°/270° pages read the wrong way (left upside down), 180° pages left upside down (the cheaper
error: many pages carry no header to read), and the time per call (1 thread). Appends one line to
benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
from common import LAYOUTS, append_result
from foreign_pages import draw_page
from tqdm import tqdm

from derc.images import ANALYSIS_SIDE, orient_landscape
from derc.render import render_ecg
from derc.render.gallery import example_signal

FS = 500.0
TURNS = (0, 1, 2, 3)  # counter-clockwise quarter turns applied to the upright page


def pages(renderer: str, count: int, seed: int, dpi: float) -> list[tuple[np.ndarray, str]]:
    """``count`` upright photographed pages of ``renderer`` (``ours`` or ``foreign``) with their layouts, seeded
    per page."""
    out = []
    for i in tqdm(range(count), desc=f"{renderer} pages", leave=False):
        rng = np.random.default_rng([seed, i, 0 if renderer == "ours" else 1])
        signal = example_signal(rng, fs=FS)
        if renderer == "ours":
            layout = LAYOUTS[i % len(LAYOUTS)]
            out.append((render_ecg(signal, FS, layout=layout, dpi=dpi, rng=rng).noisy, layout))
        else:
            layout = "3x4" if rng.random() < 0.75 else "6x2"
            out.append((draw_page(signal, FS, rng=rng, layout=layout, dpi=dpi)[0], layout))
    return out


def score(upright: list[tuple[np.ndarray, str]], side: int) -> dict:
    """Errors of each kind over ``upright`` pages at one analysis side (also per layout: pages, then errors at
    0°, 90°/270° and 180°), and the median time per call."""
    by_layout: dict[str, list[int]] = {}
    times = []
    for page, layout in upright:
        counts = by_layout.setdefault(layout, [0, 0, 0, 0])
        counts[0] += 1
        for k in TURNS:
            shown = np.ascontiguousarray(np.rot90(page, k=k))
            start = time.perf_counter()
            read = orient_landscape(shown, side=side)
            times.append(time.perf_counter() - start)
            counts[(1, 2, 3, 2)[k]] += int(not np.array_equal(read, page))  # unequal shapes are unequal too
    totals = np.sum(list(by_layout.values()), axis=0, dtype=int) if by_layout else np.zeros(4, int)
    return {
        "upright_turned": int(totals[1]),
        "quarter_wrong": int(totals[2]),
        "half_left": int(totals[3]),
        "ms_per_page": 1e3 * float(np.median(times)),
        "by_layout": by_layout,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300, help="pages per renderer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpi", type=float, default=100.0)
    parser.add_argument("--sides", default=str(ANALYSIS_SIDE), help="analysis sides to compare (px, comma-separated)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.pages, args.sides = 3, f"{ANALYSIS_SIDE},600"
    cv2.setNumThreads(1)
    sides = [int(s) for s in args.sides.split(",")]
    figures: dict = {"pages": args.pages, "seed": args.seed, "dpi": args.dpi, "smoke": args.smoke}
    figures["default"] = ANALYSIS_SIDE
    for renderer in ("ours", "foreign"):
        upright = pages(renderer, args.pages, args.seed, args.dpi)
        for side in sides:
            row = score(upright, side)
            figures[f"{renderer}_{side}"] = row
            print(
                f"{renderer:8s} side {side:5d}: upright turned {row['upright_turned']}/{args.pages}, "
                f"90/270 wrong {row['quarter_wrong']}/{2 * args.pages}, 180 left {row['half_left']}/{args.pages}, "
                f"{row['ms_per_page']:.1f} ms a call"
            )
    append_result("orientation", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
