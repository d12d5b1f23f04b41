"""Page orientation: how often ``orient_landscape`` turns a page the wrong way, and what it costs a page.

    python benchmarks/bench_orientation.py [--pages 300] [--seed 0] [--sides 1200,800,600]
    python benchmarks/bench_orientation.py --model MODEL_FOLDER    # also after the digitizer's limb-lead check
    python benchmarks/bench_orientation.py --smoke      # 3 pages of each renderer (CI)

Photographed pages (100 dpi, 1100x850 px, as the accuracy benchmark's test pages) of label-conditioned
synthetic ECGs, drawn by the package's renderer (mixed layouts and grid colours, default noise) and by
``foreign_pages.py`` (an independent renderer: its own fonts, header, grid colours and photo degradations),
each shown upright and turned 90°, 180° and 270°. Counted per renderer and per analysis side (the page is
read shrunk to at most that many px along its longer side, ``derc.images.ANALYSIS_SIDE`` by default): upright
pages turned, 90°/270° pages read the wrong way (left upside down), 180° pages left upside down (the cheaper
error: many pages carry no header to read), and the time per call (1 thread). With ``--model`` (a trained
model folder whose ink maps are digitized), the same counts at the default side after the digitizer's
orientation check (:mod:`derc.digitize.upright`: the page read turned 180° where its limb leads say so), and
how many pages that check turned and how many it read twice. Appends one line to benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from common import LAYOUTS, append_result, random_model
from foreign_pages import draw_page
from tqdm import tqdm

from derc.config import get_preset
from derc.images import ANALYSIS_SIDE, Page, orient_page
from derc.inference import DercModel, Digitizer
from derc.labels import LEADS
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


def score(upright: list[tuple[np.ndarray, str]], side: int, model: DercModel | None = None) -> dict:
    """Errors of each kind over ``upright`` pages at one analysis side (also per layout: pages, then errors at
    0°, 90°/270° and 180°), and the median time per call. With ``model``, the page each call returns is also
    denoised and read by the digitizer, and the errors are counted where its check leaves the page."""
    by_layout: dict[str, list[int]] = {}
    times = []
    checked: dict[str, int] = {"turned": 0, "read_twice": 0, "unreadable": 0}
    for page, layout in upright:
        counts = by_layout.setdefault(layout, [0, 0, 0, 0])
        counts[0] += 1
        for k in TURNS:
            shown = np.ascontiguousarray(np.rot90(page, k=k))
            start = time.perf_counter()
            oriented = orient_page(shown, side=side)
            times.append(time.perf_counter() - start)
            upright_now = np.array_equal(oriented.rgb, page)  # unequal shapes are unequal too
            if model is not None:
                upright_now ^= digitizer_turns(model, oriented, checked)
            counts[(1, 2, 3, 2)[k]] += int(not upright_now)
    totals = np.sum(list(by_layout.values()), axis=0, dtype=int) if by_layout else np.zeros(4, int)
    row = {
        "upright_turned": int(totals[1]),
        "quarter_wrong": int(totals[2]),
        "half_left": int(totals[3]),
        "ms_per_page": 1e3 * float(np.median(times)),
        "by_layout": by_layout,
    }
    return row | ({"check": checked} if model is not None else {})


def digitizer_turns(model: DercModel, oriented: Page, tally: dict[str, int]) -> bool:
    """Whether the model's digitizer reads ``oriented`` (the page as the intake left it) turned 180°, as
    run_model.py would. ``tally`` counts the turns, the pages read both ways and the unreadable ones."""
    page = oriented.rgb
    pages = model.fit_inputs([page])
    _, reading = model.digitize(  # as read_record does: the turned page is denoised anew
        model.denoise(pages),
        pages,
        Digitizer(),
        fs=FS,
        num_samples=int(10 * FS),
        leads=list(LEADS),
        record="page",
        source_shapes=[np.shape(page)[:2]],
        upright_by_text=oriented.upright_by_text,
    )
    if reading is None:
        tally["unreadable"] += 1
        return False
    tally["turned"] += int(reading.turned)
    tally["read_twice"] += int(reading.read_twice)
    return reading.turned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300, help="pages per renderer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpi", type=float, default=100.0)
    parser.add_argument("--sides", default=str(ANALYSIS_SIDE), help="analysis sides to compare (px, comma-separated)")
    parser.add_argument("--model", type=Path, default=None, help="a trained model folder: also count after its check")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    scratch = None
    if args.smoke:
        args.pages, args.sides = 3, f"{ANALYSIS_SIDE},600"
        if args.model is None:  # the check's path on a random-weight tiny model (its ink is noise: unreadable)
            scratch = Path(tempfile.mkdtemp(prefix="bench_orientation_"))
            args.model = random_model(scratch / "model", get_preset("tiny"))
    cv2.setNumThreads(1)
    sides = [int(s) for s in args.sides.split(",")]
    figures: dict = {"pages": args.pages, "seed": args.seed, "dpi": args.dpi, "smoke": args.smoke}
    figures["default"] = ANALYSIS_SIDE
    model = None
    if args.model is not None:
        torch.set_num_threads(1)
        model = DercModel.load(args.model, read_ahead=False)
        figures["model"] = str(args.model)
    for renderer in ("ours", "foreign"):
        upright = pages(renderer, args.pages, args.seed, args.dpi)
        runs = [(side, None) for side in sides] + ([(ANALYSIS_SIDE, model)] if model is not None else [])
        for side, checker in runs:
            row = score(upright, side, checker)
            name = f"{renderer}_{side}" + ("_checked" if checker is not None else "")
            figures[name] = row
            print(
                f"{renderer:8s} side {side:5d}{' + limb-lead check' if checker is not None else ''}: "
                f"upright turned {row['upright_turned']}/{args.pages}, "
                f"90/270 wrong {row['quarter_wrong']}/{2 * args.pages}, 180 left {row['half_left']}/{args.pages}"
                + (f", check turned {row['check']}" if checker is not None else f", {row['ms_per_page']:.1f} ms a call")
            )
    append_result("orientation", figures)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
