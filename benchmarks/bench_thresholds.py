"""How the threshold rule moves a trained model's test F-measure, and how much it swings with the validation draw.

Reads a trained model with its training records and its test records: by default a quick-start work folder
(``python -m derc.demo``: ``train/``, ``test/``, ``test_input/``, ``model/``), or any other (the accuracy
benchmark's) named by ``--model``, ``--train``, ``--test`` and ``--test-input``. It rebuilds the model's
validation probabilities exactly as training computed them (the classifier's validation views, and with stage C
the digitized validation pages blended at the saved weights), reads the test records through the model, and
scores three threshold rules with ``helper_code.compute_f_measure``:

- ``cut``: Youden's J, threshold at the best cut's own score (the rule before 2026-12-06);
- ``midpoint``: Youden's J, threshold halfway to the next lower validation score (``derc.thresholds``'s
  ``youden`` rule);
- ``f1``: each label's F-optimal cut on validation, threshold halfway below it as ``midpoint``
  (``Config.threshold_rule = "f1"``; until 2026-12-06 evening this benchmark put it at the cut's own score).

Each rule is scored on the saved validation set and on ``--draws`` bootstrap resamples of it, so the figures
show both the rule's effect and how far one validation draw moves the score.

    python benchmarks/bench_thresholds.py --workdir demo          # after python -m derc.demo
    python benchmarks/bench_thresholds.py --smoke                 # trains a tiny quick start first (~2 min)
    python benchmarks/bench_thresholds.py --model runs/bench_accuracy/model-signal \
        --train runs/bench_accuracy/train-n3000-500-s0-dpi100-balanced \
        --test runs/bench_accuracy/test-n3000-500-s0-dpi100-balanced \
        --test-input runs/bench_accuracy/test_input-test-n3000-500-s0-dpi100-balanced
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import ROOT, append_result

from derc import modelfolder as mf
from derc.checkpoints import load_weights
from derc.config import Config
from derc.data import make_loader
from derc.images import load_record_pages
from derc.inference import DercModel
from derc.labels import LABELS
from derc.metrics import macro, per_label_metrics
from derc.models.factory import build_classifier_for, build_denoiser, build_unet
from derc.pipeline import classifier_validation, predict_views
from derc.records import index_records, split_entries
from derc.signal_stage import blend, digitized_inputs, load_signal_classifier, signal_probabilities
from derc.thresholds import f1_thresholds, load_threshold_info, load_thresholds, youden_thresholds
from helper_code import (
    compute_f_measure,
    find_records,
    get_image_files,
    get_num_samples,
    get_sampling_frequency,
    get_signal_names,
    load_header,
    load_images,
    load_labels,
)

Rule = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _per_label(rule: Callable[[np.ndarray, np.ndarray], float]) -> Rule:
    """A per-label rule applied to every label that has both classes (0.5 for the others, as training does)."""

    def thresholds(truth: np.ndarray, prob: np.ndarray) -> np.ndarray:
        out = np.full(truth.shape[1], 0.5)
        for j in range(truth.shape[1]):
            if 0 < truth[:, j].sum() < len(truth):
                out[j] = rule(truth[:, j], prob[:, j])
        return out

    return thresholds


def _at_cut(truth: np.ndarray, prob: np.ndarray) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, cuts = roc_curve(truth, prob, drop_intermediate=False)
    return float(min(cuts[int(np.argmax(tpr - fpr))], 1.0))


RULES: dict[str, Rule] = {"cut": _per_label(_at_cut), "midpoint": youden_thresholds, "f1": f1_thresholds}


@torch.inference_mode()
def validation_probabilities(model: Path, train: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, image probabilities, probabilities the thresholds were fitted on) of the validation set that
    training split off ``train`` (the model's training records)."""
    paths = mf.resolve(model)
    config = Config.load(paths[mf.CONFIG_FILE])
    device = torch.device("cpu")
    unet = build_unet(config)
    load_weights(paths[mf.UNET_FILE], unet, what="UNet weights")
    classifier = build_classifier_for(config)
    load_weights(paths[mf.CLASSIFIER_FILE], classifier, what="classifier weights")
    entries = index_records(train, find_records(str(train)))
    if config.max_records is not None:
        entries = entries[: config.max_records]
    _, val = split_entries(entries, val_fraction=config.val_fraction, seed=config.seed)
    views = classifier_validation(config, val)
    loader = make_loader(views, batch_size=config.cls.batch_size, shuffle=False, num_workers=0, seed=config.seed)
    denoiser = build_denoiser(config, unet.eval())
    truth, image = predict_views(unet, classifier.eval(), loader, device, denoiser=denoiser)
    if not config.signal_branch:
        return truth, image, image
    signal_model = load_signal_classifier(paths[mf.SIGNAL_CLASSIFIER_FILE], config).eval()
    with_signal = [entry for entry in val if entry.has_signal]
    rows = [i for i, entry in enumerate(val) if entry.has_signal]
    inputs, _, read = digitized_inputs(with_signal, denoiser, config, device, seed=config.seed + 3)
    signal = np.zeros_like(image)
    signal[rows] = signal_probabilities(signal_model, inputs, device)
    was_read = np.zeros(len(image), dtype=bool)
    was_read[rows] = read.numpy()
    weight = np.asarray(load_threshold_info(paths[mf.THRESHOLDS_FILE])["signal_weight"], dtype=np.float64)
    return truth, image, blend(image, signal, weight, was_read)


def read_test_records(
    folder: Path, inputs: Path, test: Path
) -> tuple[list[list[str]], np.ndarray, np.ndarray, np.ndarray]:
    """(true labels, probabilities as run_models decodes them, image probabilities, signal read) per test record:
    the model in ``folder`` reads the records of ``inputs`` (labels stripped); their labels come from ``test``."""
    model = DercModel.load(folder, read_ahead=False)
    truths, probs, images, read = [], [], [], []
    for name in find_records(str(inputs)):
        record = str(inputs / name)
        header = load_header(record)
        pages = load_record_pages(record, get_image_files(record), load_images)
        loaded = [page.rgb for page in pages]
        p, signal = model.read_pages(  # as run_models reads it
            pages,
            fs=get_sampling_frequency(header),
            num_samples=get_num_samples(header),
            leads=get_signal_names(header),
            record=record,
        )
        truths.append(load_labels(str(test / name)))
        probs.append(p)
        images.append(model.probabilities(model.denoise(model.fit_inputs(loaded))))
        read.append(signal is not None or not model.reads_signal)
    return truths, np.array(probs), np.array(images), np.array(read)


def score_test(
    truths: list[list[str]],
    probs: np.ndarray,
    images: np.ndarray,
    read: np.ndarray,
    blend_thresholds: np.ndarray,
    image_thresholds: np.ndarray,
) -> float:
    """The Challenge's macro F of the test records decoded as run_models does (unread pages: image route)."""
    outputs = [
        [
            name
            for j, name in enumerate(LABELS)
            if (p if r else q)[j] >= (blend_thresholds if r else image_thresholds)[j]
        ]
        for p, q, r in zip(probs, images, read)
    ]
    return float(compute_f_measure(truths, outputs)[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="demo", help="a python -m derc.demo work folder (default: demo)")
    parser.add_argument("--model", type=Path, help="model folder (default: WORKDIR/model)")
    parser.add_argument("--train", type=Path, help="the model's training records (default: WORKDIR/train)")
    parser.add_argument("--test", type=Path, help="test records with labels (default: WORKDIR/test)")
    parser.add_argument("--test-input", type=Path, help="the same records without labels (default: WORKDIR/test_input)")
    parser.add_argument("--draws", type=int, default=200, help="bootstrap resamples of the validation set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws")
    parser.add_argument("--smoke", action="store_true", help="train a tiny quick start in a temporary folder first")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.workdir).resolve()
        if args.smoke:
            work, args.draws = Path(scratch) / "demo", 5
            command = [sys.executable, "-m", "derc.demo", "--workdir", str(work), "--train", "40", "--test", "8"]
            subprocess.run([*command, "--preset", "tiny"], cwd=ROOT, check=True, capture_output=True)
        model, train, test = args.model or work / "model", args.train or work / "train", args.test or work / "test"
        inputs = args.test_input or work / "test_input"
        started = time.perf_counter()
        truth, image, fitted = validation_probabilities(model, train)
        truths, probs, images, read = read_test_records(model, inputs, test)
        saved = load_thresholds(mf.resolve(model)[mf.THRESHOLDS_FILE])
        rng = np.random.default_rng(args.seed)
        draws = [rng.integers(0, len(truth), len(truth)) for _ in range(args.draws)]
        figures: dict[str, dict] = {}
        spreads: dict[str, np.ndarray] = {}
        for name, rule in RULES.items():
            thresholds = rule(truth, fitted)
            spreads[name] = np.array(
                [
                    score_test(truths, probs, images, read, rule(truth[d], fitted[d]), rule(truth[d], image[d]))
                    for d in draws
                ]
            )
            figures[name] = {
                "test_macro_f": score_test(truths, probs, images, read, thresholds, rule(truth, image)),
                "bootstrap_mean": float(spreads[name].mean()) if draws else None,
                "bootstrap_sd": float(spreads[name].std()) if draws else None,
                "labelled_share_of_test": dict(zip(LABELS, np.round((probs >= thresholds).mean(axis=0), 3).tolist())),
            }
        gain = spreads["midpoint"] - spreads["cut"]
        truth_test = np.array([[name in labels for name in LABELS] for labels in truths])
        # how well each set is ranked, whatever the thresholds (probs of an unread page are its image route's)
        auroc = {"validation": macro(per_label_metrics(truth, fitted, saved), "auroc")}
        auroc["test"] = macro(per_label_metrics(truth_test, probs, saved), "auroc")
    append_result(
        "bench_thresholds",
        {
            "workdir": str(work) if not args.smoke else "smoke",
            "model": str(model) if not args.smoke else "smoke",
            "smoke": args.smoke,
            "validation_records": len(truth),
            "validation_positives": dict(zip(LABELS, truth.sum(axis=0).astype(int).tolist())),
            "test_records": len(truths),
            "test_positives": dict(zip(LABELS, truth_test.sum(axis=0).astype(int).tolist())),
            "macro_auroc": auroc,
            "saved_thresholds_match": {
                name: bool(np.allclose(rule(truth, fitted), saved)) for name, rule in RULES.items()
            },
            "rules": figures,
            "draws": args.draws,
            "midpoint_minus_cut": {
                "mean": float(gain.mean()) if gain.size else None,
                "better_share": float((gain > 0).mean()) if gain.size else None,
                "worse_share": float((gain < 0).mean()) if gain.size else None,
            },
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
