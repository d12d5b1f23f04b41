"""Digitizer benchmark: Challenge SNR (dB, aligned as evaluate_model does) per layout and distortion, time per page.

Usage: python benchmarks/bench_digitize.py [--records 2] [--seed 0] [--no-grid] [--grid-colour red] [--cases noisy,blur]
       [--smoke]
Pages come from derc.render.render_ecg's clean image (ink = 1 - clean/255), resized to the UNet's 896x1152
except ``clean200dpi``; ``blur`` and ``noisy`` are also degraded like an imperfect UNet output. The
rendering's photo goes with the ink map (its grid corrects the time axis) unless ``--no-grid``. "shown" scores
only the samples the layout shows; "challenge" scores the whole 10 s reference as evaluate_model does
(NaN samples count by the kept fraction; limb-lead samples derived from the other limb leads count in full).
Appends one JSON line to benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import get_args

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import append_result  # noqa: E402

from derc.digitize import digitize  # noqa: E402
from derc.digitize.evaluation import (  # noqa: E402
    DISTORTIONS,
    challenge_snr,
    degrade,
    render_ink,
    shown_mask,
)
from derc.labels import LEADS  # noqa: E402
from derc.render import GridColour  # noqa: E402
from derc.synth import sample_labels, synthesize  # noqa: E402

FS = 500.0
CASES = ("clean200dpi", "clean896", "rotation", "perspective", "wrinkles", "crop", "blur", "noisy")


def page(
    sig: np.ndarray, layout: str, case: str, rng: np.random.Generator, grid: GridColour = "red"
) -> tuple[np.ndarray, np.ndarray]:
    """(ink map, the noisy photo at its size) of one rendering."""
    if case == "clean200dpi":
        pg = render_ink(sig, FS, layout, rng=rng, shape=None, grid=grid)
    elif case in ("clean896", "blur"):
        pg = render_ink(sig, FS, layout, rng=rng, grid=grid)
    else:
        pg = render_ink(sig, FS, layout, rng=rng, noise=DISTORTIONS[case], grid=grid)
    return (degrade(pg.ink, rng) if case in ("blur", "noisy") else pg.ink), pg.photo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-grid", action="store_true", help="digitize the ink map alone (no grid correction)")
    parser.add_argument("--grid-colour", default="red", choices=get_args(GridColour), help="the photos' grid")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--smoke", action="store_true", help="one record, clean 896x1152 pages only (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.records, args.cases = 1, "clean896"
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    rng = np.random.default_rng(args.seed)
    signals = [synthesize(sample_labels(rng), rng=rng, fs=int(FS)).astype(np.float64) for _ in range(args.records)]
    shown: dict[str, float] = {}
    full: dict[str, float] = {}
    times = []
    for layout in ("3x4", "6x2", "12x1"):
        for case in cases:
            s_shown, s_full = [], []
            for sig in signals:
                ink, photo = page(sig, layout, case, rng, args.grid_colour)
                start = time.perf_counter()
                est = digitize(ink, fs=FS, num_samples=sig.shape[0], leads=LEADS, page=None if args.no_grid else photo)
                if ink.shape == (896, 1152):
                    times.append(time.perf_counter() - start)
                mask = shown_mask(layout, sig.shape[0], FS)
                snr = challenge_snr(sig, est, FS, mask)
                s_shown.append(np.nanmean(snr))
                s_full.append(np.nanmean(challenge_snr(sig, est, FS)))
            key = f"{layout}/{case}"
            shown[key], full[key] = round(float(np.mean(s_shown)), 2), round(float(np.mean(s_full)), 2)
            print(f"{layout:5s} {case:12s} shown {shown[key]:6.2f} dB   challenge {full[key]:6.2f} dB", flush=True)
    for case in cases:
        vals = [v for k, v in shown.items() if k.endswith("/" + case)]
        print(f"all   {case:12s} shown {np.mean(vals):6.2f} dB")
    per_page = float(np.median(times)) if times else float("nan")
    print(f"median time per 896x1152 page: {per_page:.3f} s")
    figures = {
        "records": args.records,
        "seed": args.seed,
        "snr_shown_db": shown,
        "snr_challenge_db": full,
        "sec_per_page_896": round(per_page, 3),
        "cases": cases,
        "smoke": args.smoke,
        "renderer": "derc.render.render_ecg",
        "grid": not args.no_grid,
        "grid_colour": args.grid_colour,
    }
    append_result("digitize", figures)


if __name__ == "__main__":
    main()
