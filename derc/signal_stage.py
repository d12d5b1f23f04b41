"""Stage C (``Config.signal_branch``): classify the signal digitized from the UNet's ink map, beside the image.

Each training and validation record gets noisy pages (:class:`derc.data.SignalPages`) that go through the
trained UNet and the digitizer exactly as pages do at inference; the digitized signals
(:func:`derc.signals.classifier_input`) train a :class:`derc.models.signal.SignalClassifier` under the same
fit loop, loss and stopping rules as the image classifier (``Config.sig``). The two probabilities are then
blended, ``w * signal + (1 - w) * image``, with ``w`` chosen on validation over a grid of 0 to 1 (one ``w`` of
best macro AUROC, or one per label: ``Config.signal_blend``); the per-label thresholds are fitted on the blend.
Where the digitizer cannot read a page, the record keeps its image probabilities alone, in validation as at
inference.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from derc import distributed
from derc.checkpoints import load_weights
from derc.config import Config
from derc.data import JitteredSignals, SignalPages, make_loader
from derc.labels import LABELS, LEADS
from derc.metrics import macro, per_label_metrics
from derc.models.signal import SignalClassifier, signal_classifier
from derc.records import RecordEntry
from derc.runtime import data_workers, worker_init_fn
from derc.signals import classifier_input

log = logging.getLogger("derc")

BLEND_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
GAIN_JITTER = 0.1  # training inputs' leads are scaled by 1 + N(0, 0.1): gain and digitizer scale errors


def build_signal_classifier(config: Config) -> SignalClassifier:
    return signal_classifier(num_classes=len(LABELS))


def read_page(
    ink: np.ndarray, page: np.ndarray | None, fs: float, num_samples: int, config: Config
) -> np.ndarray | None:
    """One ink map -> the signal classifier's input, or None when the digitizer cannot read the page."""
    from derc.digitize import digitize

    try:
        signal = digitize(ink, fs=float(fs), num_samples=int(num_samples), leads=list(LEADS), page=page)
    except Exception as error:  # an unreadable page is a fact of life, not a training failure
        log.debug("digitization failed: %s: %s", type(error).__name__, error)
        return None
    return classifier_input(signal, float(fs), hz=config.signal_hz)


@torch.inference_mode()
def digitized_inputs(
    entries: Sequence[RecordEntry],
    denoiser: nn.Module,
    config: Config,
    device: torch.device,
    *,
    seed: int,
    views: int = 1,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs (N, 24, L) float32, labels (N, 11), read (N,) bool) for ``views`` noisy pages of each record.

    Pages are drawn by DataLoader workers, denoised in batches on ``device`` and digitized on CPU threads
    (the tracer releases the GIL). A page the digitizer cannot read gets an all-zero input and ``read`` False.
    Under torchrun each rank reads every world-size-th page and the ranks then share what they read, so all
    of them return the same tensors.
    """
    dataset = SignalPages(entries, config, views=views, seed=seed)
    state = distributed.info()
    rows = list(range(state.rank, len(dataset), state.world_size))
    workers = data_workers(config.num_workers)
    loader = DataLoader(
        Subset(dataset, rows),
        batch_size=config.sig.batch_size,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=worker_init_fn if workers else None,
        generator=torch.Generator().manual_seed(seed),  # leaves torch's global stream alone
    )
    length = round(config.signal_hz * 10.0)
    inputs = torch.zeros(len(dataset), 2 * len(LEADS), length)
    labels = torch.zeros(len(dataset), len(LABELS))
    read = torch.zeros(len(dataset), dtype=torch.uint8)
    denoiser = denoiser.to(device).eval()
    start = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for pages, fs, samples, targets in tqdm(
            loader, desc="stage C: digitize", disable=not (progress and state.is_main)
        ):
            batch = pages.to(device).permute(0, 3, 1, 2).float().div_(255.0)
            ink = denoiser(batch.contiguous(memory_format=torch.channels_last))[:, 0].float().cpu().numpy()
            jobs = [(ink[i], pages[i].numpy(), float(fs[i]), int(samples[i]), config) for i in range(len(pages))]
            batch_rows = rows[start : start + len(pages)]
            for row, x in zip(batch_rows, pool.map(lambda job: read_page(*job), jobs)):
                if x is not None:
                    inputs[row] = torch.from_numpy(x)
                    read[row] = 1
            labels[batch_rows] = targets.float()
            start += len(pages)
    distributed.sum_over_ranks(inputs, labels, read)
    read = read.bool()
    if len(dataset) and not bool(read.all()):
        log.warning("stage C: the digitizer could not read %d of %d pages", int((~read).sum()), len(dataset))
    return inputs, labels, read


def signal_loaders(
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    config: Config,
    device: torch.device,
) -> tuple[DataLoader, DataLoader]:
    """Shuffled, gain-jittered training batches and fixed validation batches of digitized inputs."""
    train_set = JitteredSignals(*train, leads=len(LEADS), gain=GAIN_JITTER, seed=config.seed + 5)
    val_set = JitteredSignals(*val, leads=len(LEADS))
    batch, pin = config.sig.batch_size, device.type == "cuda"
    train_loader = make_loader(
        train_set, batch_size=batch, shuffle=True, num_workers=0, seed=config.seed, pin_memory=pin, shard=True
    )
    val_loader = (
        make_loader(val_set, batch_size=batch, shuffle=False, num_workers=0, seed=config.seed) if len(val_set) else None
    )
    return train_loader, val_loader


@torch.inference_mode()
def signal_probabilities(model: nn.Module, inputs: torch.Tensor, device: torch.device, batch: int = 256) -> np.ndarray:
    model.eval()
    out = [torch.sigmoid(model(chunk.to(device)).float()).cpu() for chunk in inputs.split(batch)]
    return torch.cat(out).numpy() if out else np.zeros((0, len(LABELS)), np.float32)


def blend(
    image: np.ndarray, signal: np.ndarray | None, weight: float | np.ndarray, read: np.ndarray | None = None
) -> np.ndarray:
    """``weight * signal + (1 - weight) * image`` (``weight``: one, or one per label); rows not ``read`` (or no
    signal at all) keep the image's."""
    if signal is None:
        return np.asarray(image)
    weight = np.asarray(weight, dtype=np.float64)
    mixed = weight * np.asarray(signal) + (1.0 - weight) * np.asarray(image)
    if read is None:
        return mixed
    return np.where(np.asarray(read, dtype=bool)[:, None], mixed, image)


def choose_weight(
    y_true: np.ndarray, image: np.ndarray, signal: np.ndarray, read: np.ndarray, *, per_label: bool = False
) -> tuple[np.ndarray, dict]:
    """Per-label blend weights (11,) chosen on validation, and what each weight scored.

    The macro weight is the one of best macro AUROC (ties: the smaller weight). With ``per_label`` each label
    takes the weight of its own best AUROC instead (ties: the macro weight, then the smaller). The record
    holds every weight's macro AUROC (``macro``), each label's AUROC by weight (``label``) and the macro
    choice (``macro_weight``).
    """
    half = np.full(len(LABELS), 0.5)
    macro_scores, label_scores = {}, []
    for weight in BLEND_WEIGHTS:
        table = per_label_metrics(y_true, blend(image, signal, float(weight), read), half)
        macro_scores[float(weight)] = _finite(macro(table, "auroc"))
        label_scores.append([float(row["auroc"]) for row in table.values()])
    grid = [float(w) for w in BLEND_WEIGHTS]
    best = max(grid, key=lambda w: (-1.0 if macro_scores[w] is None else macro_scores[w], -w))
    weights = np.full(len(LABELS), best)
    if per_label:
        scores = np.nan_to_num(np.asarray(label_scores), nan=-1.0)  # (weights, labels)
        for j in range(len(LABELS)):
            weights[j] = max(grid, key=lambda w: (round(scores[grid.index(w), j], 4), w == best, -w))
    record = {
        "macro": macro_scores,
        "label": {name: [_finite(s[j]) for s in label_scores] for j, name in enumerate(LABELS)},
        "macro_weight": best,
    }
    return weights, record


def _finite(value: float) -> float | None:
    """A score for the JSON record: rounded, None where undefined (a label with one class in validation)."""
    return round(float(value), 4) if np.isfinite(value) else None


def load_signal_classifier(path: Path, config: Config) -> SignalClassifier:
    model = build_signal_classifier(config)
    load_weights(path, model, what="signal classifier weights")
    return model
