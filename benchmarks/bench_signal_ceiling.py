"""How much of the labels the signals themselves carry: a small 1D CNN on the records' own 12-lead signals.

    python benchmarks/bench_signal_ceiling.py [--train 3000] [--test 100] [--seed 0] [--hz 25] [--epochs 12]
    python benchmarks/bench_signal_ceiling.py --smoke      # 10 training and 4 test records, one epoch (CI)

No image is drawn or read: this is the ceiling of any route that reads the signal off the page perfectly, and a
check that the synthetic labels are learnable at all. It uses the accuracy benchmark's data (same arguments,
same folders, shared with ``bench_accuracy.py``), the pipeline's train/validation split, Youden thresholds on
validation and the per-label F of ``derc.metrics`` (NaN, so left out of the mean, when a label is neither true
nor predicted, as the Challenge scores). ``--hz 25`` samples the signals at 40 ms, the time resolution the
``small`` preset's 224x288 pages have (1 px per mm at 25 mm/s). Appends one line to benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from common import ROOT, accuracy_data, append_result
from torch import nn

from derc.labels import LABELS
from derc.metrics import macro, per_label_metrics
from derc.records import RecordEntry, index_records, split_entries
from derc.runtime import configure_threads
from derc.signals import read_signal
from derc.thresholds import youden_thresholds_with_info

SECONDS = 10.0


class SignalCNN(nn.Module):
    """Conv1d-BN-ReLU pairs with max-pooling at each width, global average pooling, one linear layer."""

    def __init__(
        self, *, leads: int = 12, num_classes: int = len(LABELS), widths: tuple[int, ...] = (32, 64, 128, 128, 128)
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = leads
        for width in widths:
            for source in (channels, width):
                layers += [nn.Conv1d(source, width, 7, padding=3, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
            layers.append(nn.MaxPool1d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=2))


def signals(entries: list[RecordEntry], hz: float) -> tuple[torch.Tensor, np.ndarray]:
    """(records, 12, hz * 10 s) signals in mV, area-resampled from each record's own rate; and the labels."""
    length = round(hz * SECONDS)
    out = np.zeros((len(entries), 12, length), dtype=np.float32)
    for i, entry in enumerate(entries):
        record = read_signal(entry.path)
        data = np.nan_to_num(np.asarray(record.signal, dtype=np.float32))
        n = max(1, round(data.shape[0] * hz / record.fs))
        data = cv2.resize(data, (data.shape[1], n), interpolation=cv2.INTER_AREA)[:length]
        out[i, :, : data.shape[0]] = data.T
    return torch.from_numpy(out), np.stack([entry.labels for entry in entries]).astype(np.float32)


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
    net = SignalCNN()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    targets = torch.from_numpy(y)
    best, best_state, curve = -1.0, None, []
    for _epoch in range(args.epochs):
        net.train()
        for batch in torch.randperm(len(x), generator=generator).split(args.batch):
            gain = 1.0 + 0.1 * torch.randn(len(batch), 1, 1, generator=generator)
            loss = loss_fn(net(x[batch] * gain), targets[batch])
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
    (x, y), (x_val, y_val) = signals(train, args.hz), signals(val, args.hz)
    x_test, y_test = signals(index_records(test_dir, sorted(p.stem for p in test_dir.glob("*.hea"))), args.hz)
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
    print(f"signals at {args.hz:g} Hz: macro F {result['macro_f']:.3f}, AUROC {result['macro_auroc']:.3f}")
    append_result("signal_ceiling", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
