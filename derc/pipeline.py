"""Training of the whole DeRC model: UNet denoiser, then classifier, then per-label thresholds.

Data flows one way: record -> rendered noisy image -> UNet -> ink map -> classifier -> probabilities
-> per-label thresholds. With ``Config.signal_branch`` a stage C (:mod:`derc.signal_stage`) also classifies the
signal digitized from the ink map, and the thresholds are fitted on the validated blend of both. Each stage
checkpoints into ``MODEL/work/`` every epoch; running the same training again on the same folders with the
same settings resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score, roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, Dataset

from derc import distributed
from derc import modelfolder as mf
from derc.checkpoints import load_weights, save_weights
from derc.config import Config, preset_from_env
from derc.data import CachedItems, ClassifierViews, DenoisingPairs, cache_if_small, make_loader
from derc.labels import LABELS
from derc.losses import DiceFocalLoss
from derc.models.factory import Denoiser, build_classifier_for, build_denoiser, build_unet
from derc.models.unet import UNet
from derc.records import RecordEntry, index_records, split_entries
from derc.runtime import cache_budget_mb, data_workers, limit_blas_threads, pick_device, seed_everything
from derc.signal_stage import (
    blend,
    build_signal_classifier,
    choose_weight,
    digitized_inputs,
    signal_loaders,
    signal_probabilities,
)
from derc.thresholds import fit_thresholds_with_info, save_thresholds
from derc.training import fit

log = logging.getLogger("derc")


def setup_logging(log_file: Path | None, verbose: bool) -> None:
    """Log to ``log_file`` (always) and to stderr when verbose; safe to call repeatedly."""
    log.setLevel(logging.INFO)
    for handler in list(log.handlers):
        if getattr(handler, "_derc", False):
            log.removeHandler(handler)
            handler.close()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler._derc = True  # type: ignore[attr-defined]
        handler.setFormatter(formatter)
        log.addHandler(handler)


def _prepare_work(folder: Path, config: Config) -> Path:
    """The work folder for ``config``: resumed when it holds a run with identical settings, else fresh."""
    work = mf.work_dir(folder)
    saved = work / mf.CONFIG_FILE
    if saved.is_file():
        try:
            same = Config.load(saved) == config
        except ValueError:
            same = False
        if same:
            log.info("resuming the unfinished training run in %s", work)
            return work
        log.info("discarding an unfinished training run with other settings in %s", work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config.save(saved)
    return work


def classifier_metrics(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Validation metrics of the classifier: macro F1 at 0.5 and macro AUROC over labels with both classes."""
    y_prob = torch.sigmoid(logits.float()).cpu().numpy()
    y_true = targets.cpu().numpy().astype(int)
    both = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < len(y_true)]
    auroc = float(np.mean([roc_auc_score(y_true[:, j], y_prob[:, j]) for j in both])) if both else float("nan")
    present = [j for j in range(y_true.shape[1]) if y_true[:, j].any()]
    f1 = f1_score(y_true[:, present], y_prob[:, present] >= 0.5, average="macro", zero_division=0) if present else 0.0
    return {"macro_auroc": auroc, "macro_f1_at_0.5": float(f1)}


def train_denoiser(
    config: Config,
    train: Sequence[RecordEntry],
    val: Sequence[RecordEntry],
    work: Path,
    logs: Path,
    device: torch.device,
    verbose: bool,
) -> UNet:
    unet = build_unet(config)
    final = work / mf.UNET_FILE
    if final.is_file():
        log.info("stage A (UNet) already finished in this run; loading %s", final)
        load_weights(final, unet, what="UNet weights")
        return unet.to(device)
    if config.denoiser == "none":
        log.info("stage A skipped: denoiser 'none' (the classifier sees the images' grey levels)")
        if distributed.info().is_main:
            save_weights(final, unet)  # untrained, unused: keeps the model folder's layout
        return unet.to(device)
    stage = config.unet
    train_set = DenoisingPairs(train, config, views=stage.views_per_record, seed=config.seed)
    val_set = _validation(DenoisingPairs(val, config, views=1, seed=config.seed + 1), config)
    if len(train_set) == 0:
        raise ValueError("no training record has signal files, so the UNet cannot be trained")
    log.info("stage A (UNet): %d training pairs/epoch, %d validation pairs", len(train_set), len(val_set))
    loss = DiceFocalLoss(alpha=config.loss.alpha, gamma=config.loss.gamma, beta=config.loss.beta, eta=config.loss.eta)
    loaders = _loaders(train_set, val_set, stage.batch_size, config, device)
    _fit_stage(unet, "unet", loaders, stage, config, work, logs, device, verbose, final, loss_fn=loss)
    return unet


def train_classifier(
    config: Config,
    unet: UNet,
    train: Sequence[RecordEntry],
    val_set: Dataset,
    work: Path,
    logs: Path,
    device: torch.device,
    verbose: bool,
) -> nn.Module:
    classifier = build_classifier_for(config, weights_path=config.classifier_weights)
    final = work / mf.CLASSIFIER_FILE
    if final.is_file():
        log.info("stage B (classifier) already finished in this run; loading %s", final)
        load_weights(final, classifier, what="classifier weights")
        return classifier.to(device)
    stage = config.cls
    train_set = ClassifierViews(train, config, views=stage.views_per_record, seed=config.seed + 2)
    log.info(
        "stage B (%s): %d training views/epoch, %d validation views", config.classifier, len(train_set), len(val_set)
    )
    _fit_stage(
        classifier,
        "classifier",
        _loaders(train_set, val_set, stage.batch_size, config, device),
        stage,
        config,
        work,
        logs,
        device,
        verbose,
        final,
        loss_fn=nn.BCEWithLogitsLoss(),
        input_transform=build_denoiser(config, unet).to(device),
        val_metrics=classifier_metrics,
    )
    return classifier


@dataclass(frozen=True)
class SignalBranch:
    """The trained stage C and its validation pages' digitized inputs (for the blend weight and thresholds)."""

    model: nn.Module
    val_inputs: torch.Tensor
    val_read: torch.Tensor
    val_records: tuple[str, ...]  # record paths of the validation inputs, in order


def train_signal_classifier(
    config: Config,
    unet: UNet,
    train: Sequence[RecordEntry],
    val: Sequence[RecordEntry],
    work: Path,
    logs: Path,
    device: torch.device,
    verbose: bool,
) -> SignalBranch:
    """Stage C: digitize noisy pages of the records through the trained UNet, then fit the signal classifier.

    The validation pages are drawn with the image classifier's validation seed, so records with signals get
    the very pages the image classifier is validated on.
    """
    model = build_signal_classifier(config)
    denoiser = build_denoiser(config, unet)
    stage = config.sig
    with_signal = [entry for entry in val if entry.has_signal]
    val_x, val_y, val_read = digitized_inputs(
        with_signal, denoiser, config, device, seed=config.seed + 3, progress=verbose
    )
    branch = SignalBranch(model, val_x, val_read, tuple(entry.path for entry in with_signal))
    final = work / mf.SIGNAL_CLASSIFIER_FILE
    if final.is_file():
        log.info("stage C (signal classifier) already finished in this run; loading %s", final)
        load_weights(final, model, what="signal classifier weights")
        model.to(device)
        return branch
    started = time.perf_counter()
    train_x, train_y, read = digitized_inputs(
        train, denoiser, config, device, seed=config.seed + 6, views=stage.views_per_record, progress=verbose
    )
    log.info(
        "stage C (signal classifier): %d training and %d validation pages digitized (%d and %d read) in %.0f s",
        len(train_x),
        len(val_x),
        int(read.sum()),
        int(val_read.sum()),
        time.perf_counter() - started,
    )
    if len(train_x) == 0:
        raise ValueError("no training record has signal files, so the signal classifier cannot be trained")
    loaders = signal_loaders((train_x, train_y), (val_x, val_y), config, device)
    _fit_stage(
        model,
        "signal_classifier",
        loaders,
        stage,
        config,
        work,
        logs,
        device,
        verbose,
        final,
        loss_fn=nn.BCEWithLogitsLoss(),
        val_metrics=classifier_metrics,
    )
    return branch


def _validation(dataset, config: Config):
    """A validation dataset, held in memory when it fits ``config.val_cache_mb``."""
    budget = cache_budget_mb(config.val_cache_mb)
    return cache_if_small(dataset, budget_mb=budget, num_workers=data_workers(config.num_workers))


def _workers_for(dataset, config: Config) -> int:
    """DataLoader workers for ``dataset``: none for one already in memory."""
    return 0 if isinstance(dataset, CachedItems) else data_workers(config.num_workers)


def classifier_validation(config: Config, val: Sequence[RecordEntry]) -> Dataset:
    """The classifier's validation views (one fixed rendering per record); the thresholds are fitted on them too."""
    return _validation(ClassifierViews(val, config, views=1, seed=config.seed + 3), config)


def _fit_stage(model, name, loaders, stage, config, work, logs, device, verbose, final, **fit_args) -> None:
    """Fit one stage on ``(train, validation)`` loaders (checkpointing to ``work/<name>.ckpt``) and save its best
    weights to ``final``."""
    result = fit(
        model,
        train_loader=loaders[0],
        val_loader=loaders[1],
        stage=stage,
        device=device,
        name=name,
        log_dir=logs,
        amp=config.amp,
        checkpoint_path=work / f"{name}.ckpt",
        progress=verbose,
        **fit_args,
    )
    log.info(
        "%s done: best epoch %d by %s, validation loss %.4f",
        name,
        result.best_epoch,
        stage.monitor,
        result.best_val_loss,
    )
    if distributed.info().is_main:
        save_weights(final, model)
    distributed.barrier()


def _loaders(train_set, val_set, batch_size: int, config: Config, device):
    pin = device.type == "cuda"
    train_loader = make_loader(
        train_set,
        batch_size=batch_size,
        shuffle=True,
        num_workers=data_workers(config.num_workers),
        seed=config.seed,
        pin_memory=pin,
        shard=True,
    )
    val_loader = None
    if len(val_set):
        val_loader = make_loader(
            val_set,
            batch_size=batch_size,
            shuffle=False,
            num_workers=_workers_for(val_set, config),
            seed=config.seed,
            pin_memory=pin,
        )
    return train_loader, val_loader


@torch.inference_mode()
def predict_views(
    unet: UNet,
    classifier: nn.Module,
    loader: DataLoader,
    device: torch.device,
    *,
    denoiser: nn.Module | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) over a loader of (noisy image, label vector) views.

    ``denoiser`` turns images into the classifier's input (default: the UNet's ink map).
    """
    unet.eval()
    classifier.eval()
    denoiser = denoiser if denoiser is not None else Denoiser(unet)
    truths, probs = [], []
    for images, targets in loader:
        images = images.to(device).contiguous(memory_format=torch.channels_last)
        ink = denoiser(images).contiguous(memory_format=torch.channels_last)
        probs.append(torch.sigmoid(classifier(ink).float()).cpu().numpy())
        truths.append(targets.numpy())
    return np.concatenate(truths), np.concatenate(probs)


def fit_thresholds(
    config: Config,
    unet: UNet,
    classifier: nn.Module,
    val_set: Dataset,
    device: torch.device,
    *,
    signal: SignalBranch | None = None,
    val_records: Sequence[str] = (),
) -> tuple[np.ndarray, dict]:
    """Per-label thresholds (``config.threshold_rule``) on the classifier's validation views (one fixed rendering
    per record).

    With ``signal`` (stage C) the thresholds are fitted on the blend of image and signal probabilities, whose
    weight is chosen first on the same validation records (``val_records``: the views' record paths in order),
    and the image probabilities alone get thresholds of their own (``info["image_thresholds"]``).
    """
    if not len(val_set):
        log.warning("no validation records: every threshold falls back to 0.5")
        info = {"fallback": list(LABELS), "validation_records": 0, "rule": config.threshold_rule}
        return np.full(len(LABELS), 0.5), info
    batch, workers = config.cls.batch_size, _workers_for(val_set, config)
    loader = make_loader(val_set, batch_size=batch, shuffle=False, num_workers=workers, seed=config.seed)
    y_true, y_prob = predict_views(unet, classifier, loader, device, denoiser=build_denoiser(config, unet))
    rule = config.threshold_rule
    extra = {}
    if signal is not None:
        # the image route alone gets its own thresholds, for records whose page cannot be digitized
        extra["image_thresholds"] = fit_thresholds_with_info(y_true, y_prob, rule=rule)[0].tolist()
        y_prob, blend_info = _blend_validation(y_true, y_prob, signal, val_records, config, device)
        extra |= blend_info
    thresholds, fallback = fit_thresholds_with_info(y_true, y_prob, rule=rule)
    missing = [name for name, fb in zip(LABELS, fallback) if fb]
    if missing:
        log.warning("labels without both classes in validation use the fallback threshold: %s", ", ".join(missing))
    _log_thresholds(y_true, y_prob, thresholds, fallback)
    info = {"fallback": missing, "validation_records": len(val_set), "rule": rule, **extra}
    return thresholds, info


# A threshold fitted on fewer validation positives than this is flagged in the log as resting on a few records.
FEW_POSITIVES = 5


def _log_thresholds(y_true: np.ndarray, y_prob: np.ndarray, thresholds: np.ndarray, fallback: np.ndarray) -> None:
    """Log each label's threshold with its validation positives and the share of validation records it labels."""
    positives = y_true.sum(axis=0).astype(int)
    labelled = (y_prob >= thresholds).mean(axis=0)
    log.info(
        "thresholds (validation positives, share of validation records labelled): %s",
        ", ".join(f"{name} {t:.3f} ({n}, {s:.0%})" for name, t, n, s in zip(LABELS, thresholds, positives, labelled)),
    )
    few = [f"{name} ({n})" for name, n, fb in zip(LABELS, positives, fallback) if not fb and n < FEW_POSITIVES]
    if few:
        log.warning(
            "thresholds fitted on fewer than %d validation positives are fragile: %s (more records help)",
            FEW_POSITIVES,
            ", ".join(few),
        )


def _blend_validation(
    y_true: np.ndarray, image: np.ndarray, signal: SignalBranch, val_records: Sequence[str], config: Config, device
) -> tuple[np.ndarray, dict]:
    """The validation blend of image and signal probabilities at the best weight, and what to record of it."""
    rows = {path: i for i, path in enumerate(val_records)}
    if len(rows) != len(image) or any(path not in rows for path in signal.val_records):
        raise ValueError("the signal branch's validation records do not match the image classifier's")
    probs = np.zeros_like(image)
    read = np.zeros(len(image), dtype=bool)
    index = [rows[path] for path in signal.val_records]
    probs[index] = signal_probabilities(signal.model, signal.val_inputs, device)
    read[index] = signal.val_read.numpy()
    weights, scores = choose_weight(y_true, image, probs, read, per_label=config.signal_blend == "label")
    log.info(
        "stage C: blend weights on the signal %s (%s; validation macro AUROC by one weight: %s)",
        dict(zip(LABELS, weights.tolist())),
        config.signal_blend,
        scores["macro"],
    )
    info = {"signal_weight": weights.tolist(), "signal_weight_auroc": scores, "signal_read": int(read.sum())}
    return blend(image, probs, weights, read), info


def train(
    data_folder: str | os.PathLike[str],
    records: Sequence[str],
    model_folder: str | os.PathLike[str],
    *,
    config: Config | None = None,
    verbose: bool = True,
) -> Path:
    """Train UNet, classifier and thresholds on ``records`` of ``data_folder``; publish them in ``model_folder``.

    Under ``torchrun`` (several processes) training is data-parallel (DDP); only rank 0 logs, saves and
    publishes, and returns the run folder (the other ranks return ``model_folder``).
    """
    config = config or preset_from_env()
    folder = Path(model_folder)
    folder.mkdir(parents=True, exist_ok=True)
    rank = distributed.init_from_env()  # a no-op unless launched by torchrun with several processes
    setup_logging(folder / "train.log" if rank.is_main else None, verbose and rank.is_main)
    started = time.perf_counter()
    log.info("training preset %r (DERC_PRESET names another, DERC_CONFIG a config file)", config.preset)
    log.info("settings: %s", json.dumps(config.to_dict(), sort_keys=True))
    seed_everything(config.seed)
    limit_blas_threads()  # as in inference: the signal stage digitizes every training page in this process
    device = distributed.device_for(pick_device())
    workers = data_workers(config.num_workers)
    log.info("device: %s (%d process(es)), %d data worker(s) per process", device, rank.world_size, workers)

    entries = index_records(data_folder, records)
    if config.max_records is not None:
        entries = entries[: config.max_records]
    train_set, val_set = split_entries(entries, val_fraction=config.val_fraction, seed=config.seed)
    log.info("%d labeled records: %d for training, %d for validation", len(entries), len(train_set), len(val_set))

    work = mf.work_dir(folder)
    if rank.is_main:
        work = _prepare_work(folder, config)
    distributed.barrier()
    unet = train_denoiser(config, train_set, val_set, work, folder, device, verbose)
    cls_val = classifier_validation(config, val_set)
    classifier = train_classifier(config, unet, train_set, cls_val, work, folder, device, verbose)
    signal = None
    if config.signal_branch:
        signal = train_signal_classifier(config, unet, train_set, val_set, work, folder, device, verbose)
    run = folder
    if rank.is_main:
        val_records = [entry.path for entry in val_set]
        thresholds, info = fit_thresholds(
            config, unet, classifier, cls_val, device, signal=signal, val_records=val_records
        )
        save_thresholds(work / mf.THRESHOLDS_FILE, thresholds, info=info)
        config.save(work / mf.CONFIG_FILE)
        run = mf.publish(folder, {"preset": config.preset, "records": len(entries)})
        log.info("model saved in %s (%.0f s)", run, time.perf_counter() - started)
    distributed.barrier()
    if rank.active:
        distributed.shutdown()
    return run
