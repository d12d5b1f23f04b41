"""Digitizer benchmark: mean SNR (dB, shown samples, no alignment) per layout and distortion, and time per page.

Usage: python benchmarks/bench_digitize.py [--records 2] [--seed 0]
Appends one JSON line to benchmarks/results.jsonl. Until derc.render lands, pages come from the test
file's drawing helper (``render_ink``); switch that one import to the real renderer later.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from derc.digitize import digitize  # noqa: E402
from derc.labels import LEADS  # noqa: E402
from derc.render.layout import page_size_px  # noqa: E402

_spec = importlib.util.spec_from_file_location("test_digitize", ROOT / "tests" / "test_digitize.py")
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
render_ink, synth_ecg, shown_mask, snr_per_lead = (
    _helpers.render_ink,
    _helpers.synth_ecg,
    _helpers.shown_mask,
    _helpers.snr_per_lead,
)
FS = 500.0


def degrade(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A UNet-like imperfect ink map: blur, soft gain, dropouts along the trace, speckle."""
    out = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.5, 1.0))
    out = out * rng.uniform(0.75, 1.0)
    h, w = out.shape
    for _ in range(int(rng.integers(5, 20))):  # short breaks in the trace
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        out[max(0, y - 40) : y + 40, x : x + int(rng.integers(1, 4))] = 0.0
    speckle = cv2.GaussianBlur((rng.random((h, w)) > 0.9993).astype(np.float32), (0, 0), 1.0) * 6
    return np.clip(out + speckle + rng.normal(0, 0.05, out.shape).astype(np.float32), 0, 1)


def page(sig: np.ndarray, layout: str, distortion: str, rng: np.random.Generator) -> np.ndarray:
    if distortion == "clean200dpi":
        return render_ink(sig, FS, layout, page_size_px(200))
    if distortion == "clean896":
        return render_ink(sig, FS, layout, (896, 1152))
    if distortion == "rot3":
        return render_ink(sig, FS, layout, (896, 1152), rotation_deg=float(rng.choice([-3.0, 3.0])))
    if distortion == "noisy896":
        ink = render_ink(sig, FS, layout, page_size_px(200), rotation_deg=float(rng.uniform(-2, 2)))
        return cv2.resize(degrade(ink, rng), (1152, 896), interpolation=cv2.INTER_AREA)
    if distortion == "clean224":
        return render_ink(sig, FS, layout, (224, 288))
    raise ValueError(distortion)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    signals = [synth_ecg(rng) for _ in range(args.records)]
    results: dict[str, float] = {}
    times = []
    for layout in ("3x4", "6x2", "12x1"):
        for distortion in ("clean200dpi", "clean896", "rot3", "noisy896", "clean224"):
            snrs = []
            for sig in signals:
                ink = page(sig, layout, distortion, rng)
                start = time.perf_counter()
                est = digitize(ink, fs=FS, num_samples=sig.shape[0], leads=LEADS)
                if distortion != "clean200dpi" and ink.shape == (896, 1152):
                    times.append(time.perf_counter() - start)
                snrs.append(snr_per_lead(sig, est, shown_mask(layout, sig.shape[0])).mean())
            results[f"{layout}/{distortion}"] = round(float(np.mean(snrs)), 2)
            print(f"{layout:5s} {distortion:12s} mean SNR {np.mean(snrs):6.2f} dB")
    for distortion in ("clean200dpi", "clean896", "rot3", "noisy896", "clean224"):
        vals = [v for k, v in results.items() if k.endswith("/" + distortion)]
        print(f"all   {distortion:12s} mean SNR {np.mean(vals):6.2f} dB")
    print(f"median time per 896x1152 page: {np.median(times):.3f} s")
    line = {
        "bench": "digitize",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "records": args.records,
        "seed": args.seed,
        "snr_db": results,
        "sec_per_page_896": round(float(np.median(times)), 3),
        "renderer": "tests.render_ink",
    }
    with open(ROOT / "benchmarks" / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
