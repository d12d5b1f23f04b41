"""Accuracy benchmark: UNet + classifier vs classifier on raw images vs the clean-rendering ceiling.

    python benchmarks/bench_accuracy.py [--preset small] [--train 3000] [--test 100] [--mix balanced] [--seed 0]
                                        [--max-steps 70] [--variants unet,raw,clean]
    python benchmarks/bench_accuracy.py --smoke      # tiny preset, a handful of records (CI)

On one fixed, seeded synthetic set (training records with signals; test records with one noisy page each,
and the same records rendered clean) it trains three models (Config ``denoiser``/``clean_inputs``):
``unet`` (DeRC), ``raw`` (denoiser "none": the classifier sees the grey levels of the noisy page) and
``clean`` (denoiser "none", trained and tested on the renderer's clean traces: a perfect denoiser's ceiling);
and ``signal`` (``--variants signal``, not in the default set): DeRC plus stage C, the signal digitized from the
ink map classified by a 1D CNN and blended with the image classifier (``Config.signal_branch``).
Each is run with run_model.py and scored with evaluate_model.py (macro F, per-class F); per-label AUROC
comes from the model's probabilities on the same test images. Appends one line to benchmarks/results.jsonl.

``--mix balanced`` (default) makes every label the focus of 1/11 of the training and test records, so even
PAC and BRADY have ~10 test positives per 100 records and per-label F is not decided by two or three cases;
``--mix ptbxl`` keeps the PTB-XL-like label frequencies (as the quick-start demo does).
The defaults fit a 2-core CPU: preset ``small``, 3000 training records (2400 train / 600 validation), each
stage capped at 70 optimisation steps per epoch, about 40 min for the ``unet`` variant (``--train 400
--max-steps 0``, the earlier setting: about 15 min). ``medium``
and ``paper`` are meant for a GPU.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import ROOT, accuracy_data, append_result, macro_f_of, run_script
from sklearn.metrics import roc_auc_score

from derc import modelfolder as mf
from derc.config import SIGNAL_BLENDS, get_preset
from derc.images import load_record_pages
from derc.inference import DercModel
from derc.labels import LABELS
from derc.pipeline import train
from derc.records import index_records, write_test_inputs
from derc.thresholds import THRESHOLD_RULES, load_threshold_info
from helper_code import (
    get_image_files,
    get_num_samples,
    get_sampling_frequency,
    get_signal_names,
    load_header,
    load_images,
)

VARIANTS = {
    "unet": {"denoiser": "unet", "clean_inputs": False, "signal_branch": False},
    "raw": {"denoiser": "none", "clean_inputs": False, "signal_branch": False},
    "clean": {"denoiser": "none", "clean_inputs": True, "signal_branch": False},
    # DeRC plus stage C: the signal digitized from the UNet's ink map, classified and blended with the image's
    "signal": {"denoiser": "unet", "clean_inputs": False, "signal_branch": True},
}


def aurocs(model_folder: Path, test: Path) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per-label AUROC of the model's probabilities on the test records' images (labels with both classes).

    With a signal branch, also the AUROC of other blends of the same records' image and signal probabilities:
    the image alone, the signal alone and the one weight of best validation macro AUROC.
    """
    model = DercModel.load(model_folder, read_ahead=False)
    entries = index_records(test, sorted(p.stem for p in test.glob("*.hea")))
    others = {}
    if model.reads_signal:
        info = load_threshold_info(mf.resolve(model_folder)[mf.THRESHOLDS_FILE])
        others = {"image": 0.0, "signal": 1.0, "macro_weight": info["signal_weight_auroc"]["macro_weight"]}
    probs, truth, other_probs = [], [], {name: [] for name in others}
    for entry in entries:
        pages = load_record_pages(entry.path, get_image_files(entry.path), load_images)
        images = [page.rgb for page in pages]
        header = load_header(entry.path)
        fs, samples, leads = get_sampling_frequency(header), get_num_samples(header), get_signal_names(header)
        p, signal = model.read_pages(pages, fs=fs, num_samples=samples, leads=leads, record=entry.path)  # as run_models
        probs.append(p)
        truth.append(entry.labels)
        ink = model.denoise(images) if others else None  # once for all the other blends
        for name, weight in others.items():
            other = replace(model, signal_weight=weight)
            other_probs[name].append(other.probabilities(ink, signal=signal, fs=fs, leads=leads))
    y = np.array(truth)

    def table(p: np.ndarray) -> dict[str, float]:
        both = [j for j in range(len(LABELS)) if 0 < y[:, j].sum() < len(y)]
        return {LABELS[j]: float(roc_auc_score(y[:, j], p[:, j])) for j in both}

    return table(np.array(probs)), {name: table(np.array(rows)) for name, rows in other_probs.items()}


def evaluate(variant: str, work: Path, config, train_dir: Path, test_dir: Path, env: dict[str, str]) -> dict:
    model = work / f"model-{variant}"
    inputs = work / f"test_input-{test_dir.name}"
    if not inputs.is_dir():
        write_test_inputs(test_dir, inputs)
    started = time.perf_counter()
    train(train_dir, sorted(p.stem for p in train_dir.glob("*.hea")), model, config=config, verbose=False)
    train_s = time.perf_counter() - started
    outputs = work / f"outputs-{variant}"
    started = time.perf_counter()
    run_script(["run_model.py", "-d", str(inputs), "-m", str(model), "-o", str(outputs), "-f"], env)
    run_s = time.perf_counter() - started
    table = work / f"per_class-{variant}.csv"
    text = run_script(["evaluate_model.py", "-d", str(test_dir), "-o", str(outputs), "-tb", str(table)], env)
    macro_f = macro_f_of(text)
    with open(table, newline="") as handle:
        per_class_f = {row[0]: float(row[1]) for row in csv.reader(handle) if len(row) >= 2 and _number(row[1])}
    auroc, other_aurocs = aurocs(model, test_dir)
    return {
        "macro_f": macro_f,
        "macro_auroc": _mean(auroc),
        **{f"macro_auroc_{name}": _mean(table) for name, table in other_aurocs.items()},
        "per_class_f": per_class_f,
        "per_label_auroc": auroc,
        "train_s": round(train_s, 1),
        "run_s": round(run_s, 1),
    }


def _mean(table: dict[str, float]) -> float:
    return float(np.mean(list(table.values()))) if table else float("nan")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--train", type=int, default=3000, help="training records (validation is split off)")
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="seeds the data and the training")
    parser.add_argument("--dpi", type=float, default=100.0, help="dpi of the test images")
    parser.add_argument("--mix", choices=("balanced", "ptbxl"), default="balanced", help="label mix of the data")
    parser.add_argument("--variants", default="unet,raw,clean")
    parser.add_argument(
        "--signal-blend", choices=SIGNAL_BLENDS, default=None, help="stage C's blend weights (default: the preset's)"
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench_accuracy")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=70,
        help="cap on optimisation steps per epoch of both stages (more records at the same compute; 0: none)",
    )
    parser.add_argument(
        "--threshold-rule", choices=THRESHOLD_RULES, default=None, help="how thresholds are fitted (default: preset's)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny preset, 10 training and 4 test records")
    args = parser.parse_args(argv)
    if args.smoke:
        args.preset, args.train, args.test, args.variants, args.max_steps = "tiny", 10, 4, "unet,raw", 0
        args.workdir = args.workdir.with_name("bench_accuracy_smoke")
    work = args.workdir
    base = replace(get_preset(args.preset), seed=args.seed)  # the seed draws the data and the models' start
    if args.signal_blend:
        base = replace(base, signal_blend=args.signal_blend)
    if args.threshold_rule:
        base = replace(base, threshold_rule=args.threshold_rule)
    args.max_steps = args.max_steps or None
    if args.max_steps is not None:
        base = replace(
            base,
            unet=replace(base.unet, max_steps_per_epoch=args.max_steps),
            cls=replace(base.cls, max_steps_per_epoch=args.max_steps),
        )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    train_dir, noisy_dir, clean_tests = accuracy_data(work, args.train, args.test, args.seed, args.dpi, args.mix)
    results = {}
    for variant in args.variants.split(","):
        test_dir = clean_tests() if VARIANTS[variant]["clean_inputs"] else noisy_dir
        config = replace(base, **VARIANTS[variant])
        results[variant] = evaluate(variant, work, config, train_dir, Path(test_dir), env)
        scores = results[variant]
        print(f"{variant}: macro F {scores['macro_f']:.3f}, AUROC {scores['macro_auroc']:.3f}", end="")
        print("".join(f", {k[12:]} {v:.3f}" for k, v in scores.items() if k.startswith("macro_auroc_")))
    append_result(
        "accuracy",
        {"preset": args.preset, "train": args.train, "test": args.test, "seed": args.seed, "mix": args.mix}
        | {"max_steps": args.max_steps, "signal_blend": base.signal_blend, "threshold_rule": base.threshold_rule}
        | {"smoke": args.smoke}
        | {"variants": results},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
