"""k-fold cross-validation of the whole DeRC model, reported in the paper's Table 1 format.

    python -m derc.cv -d DATA_FOLDER -o CV_FOLDER [-k 5] [--preset small] [--seed 0]

Each fold trains UNet, classifier and thresholds on the other folds (thresholds from their own 20%
validation split), then scores the held-out records from their own images when they have some,
otherwise from one fresh noisy rendering at 200 dpi. Writes ``CV_FOLDER/table.txt`` and
``CV_FOLDER/folds.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from derc.config import Config, get_preset, preset_from_env
from derc.fileio import write_json_atomic, write_text_atomic
from derc.inference import DercModel
from derc.metrics import format_table, per_label_metrics
from derc.pipeline import train
from derc.records import RecordEntry, index_records
from derc.render import render_ecg
from derc.signals import read_signal

log = logging.getLogger("derc")


def record_images(entry: RecordEntry, *, seed: int, dpi: float = 200.0) -> list[np.ndarray]:
    """The record's own images when it lists some, else one seeded noisy rendering of its signal."""
    if entry.image_files:
        from PIL import Image

        from derc.images import load_record_images

        def loader(record: str) -> list:
            return [Image.open(Path(record).parent / name) for name in entry.image_files]

        return load_record_images(entry.path, entry.image_files, loader)
    record = read_signal(entry.path)
    return [render_ecg(record.signal, record.fs, dpi=dpi, rng=np.random.default_rng(seed)).noisy]


def run_cv(data_folder: str, out_folder: str, *, folds: int, config: Config, verbose: bool = True) -> list[dict]:
    records = sorted(str(p.relative_to(data_folder).with_suffix("")) for p in Path(data_folder).rglob("*.hea"))
    entries = index_records(data_folder, records)
    ids = [str(Path(e.path).relative_to(data_folder)) for e in entries]
    order = np.random.default_rng(config.seed).permutation(len(entries))
    parts = np.array_split(order, folds)
    results = []
    for k, held in enumerate(parts):
        held_set = set(held.tolist())
        train_ids = [ids[i] for i in range(len(ids)) if i not in held_set]
        model_folder = Path(out_folder) / f"fold{k}"
        train(data_folder, train_ids, model_folder, config=config, verbose=verbose)
        model = DercModel.load(model_folder, read_ahead=False)
        y_true, y_prob = [], []
        for i in tqdm(sorted(held_set), desc=f"fold {k} test", disable=not verbose):
            probs = model.probabilities(model.denoise(record_images(entries[i], seed=config.seed + 7919 * i)))
            y_true.append(entries[i].labels)
            y_prob.append(probs)
        table = per_label_metrics(np.array(y_true), np.array(y_prob), model.thresholds)
        results.append(table)
        log.info("fold %d done", k)
    text = format_table(results)
    write_text_atomic(Path(out_folder) / "table.txt", text + "\n")
    write_json_atomic(Path(out_folder) / "folds.json", results)
    print(text)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", "--data", required=True, help="folder of labeled Challenge records")
    parser.add_argument("-o", "--out", required=True, help="folder for the fold models and the table")
    parser.add_argument("-k", "--folds", type=int, default=5)
    parser.add_argument("--preset", default=None, help="training preset (default: $DERC_PRESET or paper)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    config = get_preset(args.preset) if args.preset else preset_from_env()
    if args.seed is not None:
        config = dataclasses.replace(config, seed=args.seed)
    run_cv(args.data, args.out, folds=args.folds, config=config, verbose=not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
