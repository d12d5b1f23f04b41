"""How much of the labels the signals themselves carry: a small 1D CNN on the records' own 12-lead signals.

    python benchmarks/bench_signal_ceiling.py [--train 3000] [--test 100] [--seed 0] [--hz 25] [--epochs 12]
    python benchmarks/bench_signal_ceiling.py --pages clean --size 224x288 --hz 50 --epochs 15
    python benchmarks/bench_signal_ceiling.py --smoke      # 10 training and 4 test records, one epoch (CI)

By default no image is drawn or read: this is the ceiling of any route that reads the signal off the page
perfectly, and a check that the synthetic labels are learnable at all. ``--pages clean`` draws every record
(training, validation and test) as a clean page (a perfect denoiser's ink map) in a seeded layout at 100 dpi,
resizes it to ``--size`` and reads the signal back with the package's digitizer, as stage C does
(``derc.signal_stage.read_page``): the ceiling of the signal branch at that size. The model is the package's
signal classifier (``derc.models.signal``) on ``derc.signals.classifier_input`` (leads and shown masks).
It uses the accuracy benchmark's data (same arguments, same folders, shared with ``bench_accuracy.py``), the
pipeline's train/validation split, Youden thresholds on
validation and the per-label F of ``derc.metrics`` (NaN, so left out of the mean, when a label is neither true
nor predicted, as the Challenge scores). ``--hz 25`` samples the signals at 40 ms, the time resolution the
``small`` preset's 224x288 pages have (1 px per mm at 25 mm/s). Appends one line to benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from common import ROOT, accuracy_data, append_result
from torch import nn

from derc.config import get_preset
from derc.labels import LABELS, LEADS
from derc.metrics import macro, per_label_metrics
from derc.models.signal import SignalClassifier
from derc.records import RecordEntry, index_records, split_entries
from derc.render import NoiseConfig, render_ecg
from derc.render.layout import LAYOUTS
from derc.runtime import configure_threads
from derc.signals import classifier_input, read_signal
from derc.thresholds import youden_thresholds_with_info

SECONDS = 10.0


def signals(entries: list[RecordEntry], hz: float) -> tuple[torch.Tensor, np.ndarray]:
    """(records, 24, hz * 10 s) classifier inputs of each record's own signal (area-resampled, every sample shown);
    and the labels."""
    out = np.zeros((len(entries), 2 * len(LEADS), round(hz * SECONDS)), dtype=np.float32)
    for i, entry in enumerate(entries):
        record = read_signal(entry.path)
        out[i] = classifier_input(np.nan_to_num(record.signal), record.fs, hz=hz, seconds=SECONDS)
    return torch.from_numpy(out), np.stack([entry.labels for entry in entries]).astype(np.float32)


def page_signals(entries: list[RecordEntry], hz: float, size: tuple[int, int], seed: int) -> tuple[torch.Tensor, int]:
    """Classifier inputs read back by the digitizer from clean pages of the records (a seeded layout each, drawn
    at 100 dpi and area-resized to ``size``), and how many pages it could not read (left all zero)."""
    from derc.signal_stage import read_page

    config = dataclasses.replace(get_preset("small"), signal_hz=hz)
    out = np.zeros((len(entries), 2 * len(LEADS), round(hz * SECONDS)), dtype=np.float32)
    failed = 0
    for i, entry in enumerate(entries):
        record = read_signal(entry.path)
        rng = np.random.default_rng((seed, i))
        layout = LAYOUTS[int(rng.integers(len(LAYOUTS)))]
        page = render_ecg(record.signal, record.fs, layout=layout, dpi=100.0, rng=rng, noise=NoiseConfig().scaled(0.0))
        clean = cv2.resize(page.clean, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        x = read_page(1.0 - clean.astype(np.float32) / 255.0, None, record.fs, record.signal.shape[0], config)
        if x is None:
            failed += 1
        else:
            out[i] = x
    return torch.from_numpy(out), failed


@torch.inference_mode()
def probabilities(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    net.eval()
    return torch.cat([torch.sigmoid(net(chunk)) for chunk in x.split(256)]).numpy()


def macro_auroc(y: np.ndarray, p: np.ndarray) -> float:
    return macro(per_label_metrics(y, p, np.full(len(LABELS), 0.5)), "auroc")


def fit(x: torch.Tensor, y: np.ndarray, x_val: torch.Tensor, y_val: np.ndarray, args) -> tuple[nn.Module, list]:
    """Adam on BCE with a random gain per record (x0.9-1.1); keeps the epoch of best validation macro AUROC."""
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    net = SignalClassifier()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    targets = torch.from_numpy(y)
    best, best_state, curve = -1.0, None, []
    for _epoch in range(args.epochs):
        net.train()
        for batch in torch.randperm(len(x), generator=generator).split(args.batch):
            gain = 1.0 + 0.1 * torch.randn(len(batch), 1, 1, generator=generator)
            inputs = x[batch].clone()
            inputs[:, : len(LEADS)] *= gain  # the leads, not their shown masks
            loss = loss_fn(net(inputs), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        auroc = macro_auroc(y_val, probabilities(net, x_val))
        curve.append(round(auroc, 4))
        if auroc > best or best_state is None:
            best, best_state = auroc, {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    return net, curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=3000, help="training records (validation is split off)")
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpi", type=float, default=100.0, help="dpi of the (unused) test images: names the data")
    parser.add_argument("--mix", choices=("balanced", "ptbxl"), default="balanced")
    parser.add_argument("--hz", type=float, default=25.0, help="sampling rate the signals are resampled to")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all CPUs)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "bench_accuracy")
    parser.add_argument("--pages", choices=("none", "clean"), default="none", help="read the signals off clean pages")
    parser.add_argument("--size", default="224x288", help="HxW the clean pages are resized to (with --pages clean)")
    parser.add_argument("--smoke", action="store_true", help="10 training and 4 test records, one epoch")
    args = parser.parse_args(argv)
    if args.smoke:
        args.train, args.test, args.epochs = 10, 4, 1
        args.workdir = args.workdir.with_name("bench_accuracy_smoke")
    threads = configure_threads(args.threads)
    train_dir, test_dir, _ = accuracy_data(args.workdir, args.train, args.test, args.seed, args.dpi, args.mix)
    records = index_records(train_dir, sorted(p.stem for p in train_dir.glob("*.hea")))
    train, val = split_entries(records, val_fraction=0.2, seed=args.seed)  # the pipeline's split (same seed)
    started = time.perf_counter()
    tests = index_records(test_dir, sorted(p.stem for p in test_dir.glob("*.hea")))
    (x, y), (x_val, y_val), (x_test, y_test) = signals(train, args.hz), signals(val, args.hz), signals(tests, args.hz)
    unread = 0
    if args.pages == "clean":
        size = tuple(int(v) for v in args.size.lower().split("x"))
        for offset, (entries, inputs) in enumerate(((train, x), (val, x_val), (tests, x_test))):
            read, failed = page_signals(entries, args.hz, size, args.seed * 10 + offset)
            inputs.copy_(read)
            unread += failed
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    net, curve = fit(x, y, x_val, y_val, args)
    train_s = time.perf_counter() - started
    thresholds, _ = youden_thresholds_with_info(y_val, probabilities(net, x_val))
    table = per_label_metrics(y_test, probabilities(net, x_test), thresholds)
    result = {
        "train": args.train,
        "test": args.test,
        "seed": args.seed,
        "mix": args.mix,
        "hz": args.hz,
        "pages": args.pages,
        "size": args.size if args.pages != "none" else None,
        "unread_pages": unread,
        "epochs": args.epochs,
        "threads": threads,
        "smoke": args.smoke,
        "macro_f": macro(table, "f1"),
        "macro_auroc": macro(table, "auroc"),
        "val_auroc_per_epoch": curve,
        "per_label_f": {name: row["f1"] for name, row in table.items()},
        "per_label_auroc": {name: row["auroc"] for name, row in table.items()},
        "read_s": round(read_s, 1),
        "train_s": round(train_s, 1),
    }
    source = "signals" if args.pages == "none" else f"signals read off clean {args.size} pages"
    print(f"{source} at {args.hz:g} Hz: macro F {result['macro_f']:.3f}, AUROC {result['macro_auroc']:.3f}")
    append_result("signal_ceiling", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
