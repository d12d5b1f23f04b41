"""A generic, resumable fit loop: Adam, plateau or cosine LR schedule, optional weight EMA, early stopping,
best-weight restore, logs.

Used for both DeRC stages (UNet denoiser, then classifier on frozen-denoiser outputs). Each epoch writes a
CSV log, a PNG of the curves and (optionally) a checkpoint; calling :func:`fit` again with an existing
checkpoint resumes after its last finished epoch and reaches the same weights as an uninterrupted run
(same seed, deterministic loaders), because optimizer, scheduler, scaler, early-stopping and RNG states
(Python, NumPy, torch, CUDA, and the loaders' own generators) are all saved.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn
from tqdm.auto import tqdm

from derc import distributed
from derc.checkpoints import load_state, save_state
from derc.config import StageConfig
from derc.errors import ModelFolderError
from derc.fileio import atomic_path, write_text_atomic
from derc.runtime import use_bf16

logger = logging.getLogger("derc")

CHECKPOINT_FORMAT = "derc-fit"
CHECKPOINT_VERSION = 1

Batches = Iterable[tuple[Tensor, Tensor]]
Scheduler = torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau


class EarlyStopping:
    """Stop after ``patience`` consecutive steps without an improvement larger than ``min_delta``."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf
        self.bad_steps = 0
        self.should_stop = False

    def step(self, value: float) -> bool:
        """Record a monitored value (lower is better); True when it is a new best."""
        if value < self.best - self.min_delta:
            self.best = float(value)
            self.bad_steps = 0
            return True
        self.bad_steps += 1
        self.should_stop = self.bad_steps >= self.patience
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_steps": self.bad_steps, "should_stop": self.should_stop}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.bad_steps = int(state["bad_steps"])
        self.should_stop = bool(state["should_stop"])


@dataclass
class FitResult:
    """``best_val_loss``: the validation loss at the best epoch (the training loss without a validation loader).

    The best epoch is chosen by ``StageConfig.monitor``: the lowest validation loss or the highest metric.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    # The monitored value at the best epoch (the loss, or minus the monitored metric).
    best_monitored: float = math.inf
    stopped_early: bool = False
    resumed_from_epoch: int | None = None
    # Per epoch: training seconds, seconds waiting for data, training images per second (all ranks).
    speed: list[dict[str, float]] = field(default_factory=list)


# --- RNG state -------------------------------------------------------------------------------------------


def _loader_generators(loaders: Iterable[Any]) -> list[torch.Generator]:
    found: list[torch.Generator] = []
    for loader in loaders:
        for owner in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
            generator = getattr(owner, "generator", None)
            if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
                found.append(generator)
    return found


def _rng_state(generators: list[torch.Generator]) -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - saving the legacy global stream
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loaders": [g.get_state() for g in generators],
    }


def _set_rng_state(state: dict[str, Any], generators: list[torch.Generator]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if len(state["loaders"]) != len(generators):
        logger.warning("checkpoint has %d loader generator(s), loaders have %d", len(state["loaders"]), len(generators))
    for generator, saved in zip(generators, state["loaders"]):
        generator.set_state(saved)


# --- logs ------------------------------------------------------------------------------------------------


def _write_log(path: Path, history: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())


def _plot_curves(path: Path, history: list[dict[str, float]], name: str) -> None:
    epochs = [row["epoch"] for row in history]
    metric_keys = [k for k in history[-1] if k not in ("epoch", "train_loss", "val_loss", "lr", "seconds")]
    panels = 3 if metric_keys else 2
    figure = Figure(figsize=(5 * panels, 4))  # fixed margins: automatic layouts triple the drawing time
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels)
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.13, top=0.9, wspace=0.25)
    for key in ("train_loss", "val_loss"):
        axes[0].plot(epochs, [row.get(key, math.nan) for row in history], marker="o", label=key)
    axes[0].set(title=f"{name}: loss", xlabel="epoch")
    axes[0].legend()
    axes[1].plot(epochs, [row["lr"] for row in history], marker="o")
    axes[1].set(title="learning rate", xlabel="epoch", yscale="log")
    if metric_keys:
        for key in metric_keys:
            axes[2].plot(epochs, [row.get(key, math.nan) for row in history], marker="o", label=key)
        axes[2].set(title="validation metrics", xlabel="epoch")
        axes[2].legend(fontsize="small")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)


# --- epochs ----------------------------------------------------------------------------------------------


def _to_device(x: Tensor, device: torch.device) -> Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def _prepare(inputs: Tensor, device: torch.device, transform: Callable[[Tensor], Tensor] | None) -> Tensor:
    inputs = _to_device(inputs, device)
    if transform is not None:
        with torch.no_grad():
            inputs = transform(inputs)
        inputs = inputs.contiguous(memory_format=torch.channels_last) if inputs.ndim == 4 else inputs
    return inputs


def _count(loader: Any, cap: int | None) -> int | None:
    try:
        total = len(loader)
    except TypeError:
        return cap
    return min(total, cap) if cap is not None else total


def _train_epoch(ctx: _Context, epoch: int) -> float:
    ctx.trained.train()
    # Loaders that draw fresh data per epoch (e.g. derc.data.EpochLoader) learn the epoch here, so a
    # resumed run sees the same data as an uninterrupted one.
    if hasattr(ctx.train_loader, "set_epoch"):
        ctx.train_loader.set_epoch(epoch)
    total, seen = 0.0, 0
    cap = ctx.stage.max_steps_per_epoch
    waited = 0.0  # seconds spent waiting for the loader (data time)
    bar = tqdm(
        ctx.train_loader,
        total=_count(ctx.train_loader, cap),
        desc=f"{ctx.name} {epoch}",
        disable=not ctx.progress,
        leave=False,
    )
    batches = iter(bar)
    step = 0
    while cap is None or step < cap:
        began = time.perf_counter()
        try:
            inputs, targets = next(batches)
        except StopIteration:
            break
        waited += time.perf_counter() - began
        with torch.autocast(device_type=ctx.device.type, dtype=ctx.amp_dtype, enabled=ctx.use_amp):
            inputs = _prepare(inputs, ctx.device, ctx.input_transform)
            loss = ctx.loss_fn(ctx.trained(inputs), targets.to(ctx.device, non_blocking=True))
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"{ctx.name}: training loss is {value} at epoch {epoch}, step {step}")
        ctx.optimizer.zero_grad(set_to_none=True)
        ctx.scaler.scale(loss).backward()
        ctx.scaler.step(ctx.optimizer)
        ctx.scaler.update()
        if ctx.per_step_schedule:
            ctx.scheduler.step()
        if ctx.averaged is not None:
            ctx.averaged.update_parameters(ctx.model)
            _keep_recent(ctx.recent, inputs.detach(), ctx.stage.ema_bn_images)
        total += value * len(inputs)
        seen += len(inputs)
        step += 1
        bar.set_postfix(loss=f"{value:.4f}")
    bar.close()
    if seen == 0:
        raise ValueError(f"{ctx.name}: the training loader yielded no batches")
    ctx.data_seconds = waited
    ctx.train_images = seen
    return total / seen


def _keep_recent(recent: list[Tensor], inputs: Tensor, images: int) -> None:
    """Append a batch; drop the oldest ones while the rest still hold at least ``images`` images."""
    recent.append(inputs)
    while len(recent) > 1 and sum(len(batch) for batch in recent[1:]) >= images:
        recent.pop(0)


def _recalibrate(ctx: _Context) -> None:
    """Recompute the weight average's BatchNorm statistics on the epoch's last training inputs (all ranks')."""
    if ctx.averaged is None:
        return
    with torch.no_grad(), torch.autocast(device_type=ctx.device.type, dtype=ctx.amp_dtype, enabled=ctx.use_amp):
        update_bn(ctx.recent, ctx.averaged.module)  # inputs as the training steps saw them, so under AMP too
    ctx.recent.clear()
    distributed.average_buffers(ctx.averaged.module)


@torch.no_grad()
def _evaluate(ctx: _Context, epoch: int) -> tuple[float, dict[str, float]]:
    ctx.evaluated.eval()
    total, seen = 0.0, 0
    outputs: list[Tensor] = []
    targets_seen: list[Tensor] = []
    bar = tqdm(ctx.val_loader, desc=f"{ctx.name} {epoch} val", disable=not ctx.progress, leave=False)
    for inputs, targets in bar:
        targets = targets.to(ctx.device, non_blocking=True)
        with torch.autocast(device_type=ctx.device.type, dtype=ctx.amp_dtype, enabled=ctx.use_amp):
            inputs = _prepare(inputs, ctx.device, ctx.input_transform)
            output = ctx.evaluated(inputs)
            loss = ctx.loss_fn(output, targets)
        total += float(loss) * len(inputs)
        seen += len(inputs)
        if ctx.val_metrics is not None:
            outputs.append(output.float().cpu())
            targets_seen.append(targets.float().cpu())
    bar.close()
    if seen == 0:
        raise ValueError(f"{ctx.name}: the validation loader yielded no batches")
    metrics: dict[str, float] = {}
    if ctx.val_metrics is not None:
        metrics = {k: float(v) for k, v in ctx.val_metrics(torch.cat(outputs), torch.cat(targets_seen)).items()}
    return total / seen, metrics


@dataclass
class _Context:
    model: nn.Module
    train_loader: Batches
    val_loader: Batches | None
    loss_fn: Callable[[Tensor, Tensor], Tensor]
    stage: StageConfig
    device: torch.device
    name: str
    use_amp: bool
    amp_dtype: torch.dtype | None  # None: autocast's default for the device (float16 on CUDA)
    input_transform: Callable[[Tensor], Tensor] | None
    val_metrics: Callable[[Tensor, Tensor], dict[str, float]] | None
    progress: bool
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler
    scaler: torch.amp.GradScaler
    trained: nn.Module | None = None  # what the training step calls: the model, or its DDP wrapper
    data_seconds: float = 0.0  # last training epoch: time spent waiting for batches
    train_images: int = 0  # last training epoch: images seen by this process
    averaged: AveragedModel | None = None  # the weights' moving average (StageConfig.ema_decay), if any
    recent: list[Tensor] = field(default_factory=list)  # the last training inputs, for the average's BatchNorm

    @property
    def evaluated(self) -> nn.Module:
        """What validation scores and the best weights come from: the moving average when kept, else the model."""
        return self.averaged.module if self.averaged is not None else self.model

    @property
    def per_step_schedule(self) -> bool:
        """True when the scheduler steps after every optimisation step (all but the per-epoch plateau rule)."""
        return not isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


# --- checkpoints -----------------------------------------------------------------------------------------


def _cpu_copy(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {key: value.detach().to("cpu", copy=True) for key, value in state.items()}


def _save_checkpoint(path: Path, ctx: _Context, stopper: EarlyStopping, result: FitResult, best: dict, epoch: int):
    save_state(
        path,
        {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "name": ctx.name,
            "epoch": epoch,
            "model": _cpu_copy(ctx.model.state_dict()),
            "optimizer": ctx.optimizer.state_dict(),
            "scheduler": ctx.scheduler.state_dict(),
            "scaler": ctx.scaler.state_dict(),
            "ema": ctx.averaged.state_dict() if ctx.averaged is not None else None,
            "early_stopping": stopper.state_dict(),
            "best_weights": best,
            "best_epoch": result.best_epoch,
            "best_val_loss": result.best_val_loss,
            "best_monitored": result.best_monitored,
            "history": result.history,
            "rng": _rng_state(_loader_generators([ctx.train_loader, ctx.val_loader])),
        },
    )


def _resume(path: Path, ctx: _Context, stopper: EarlyStopping, result: FitResult) -> tuple[int, dict[str, Tensor]]:
    what = f"{ctx.name} training checkpoint"
    state = load_state(path, what=what)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("format_version") != CHECKPOINT_VERSION:
        raise ModelFolderError(f"{what} {path} has an unknown format")
    if state.get("name") != ctx.name:
        raise ModelFolderError(f"{what} {path} belongs to {state.get('name')!r}, not {ctx.name!r}")
    try:
        ctx.model.load_state_dict(state["model"])
        ctx.optimizer.load_state_dict(state["optimizer"])
        ctx.scheduler.load_state_dict(state["scheduler"])
        ctx.scaler.load_state_dict(state["scaler"])
        if (state.get("ema") is None) != (ctx.averaged is None):
            raise ValueError("the weight average (ema_decay) is kept in one of the checkpoint and this run only")
        if ctx.averaged is not None:
            ctx.averaged.load_state_dict(state["ema"])
        stopper.load_state_dict(state["early_stopping"])
        _set_rng_state(state["rng"], _loader_generators([ctx.train_loader, ctx.val_loader]))
        result.history = list(state["history"])
        result.best_epoch = int(state["best_epoch"])
        result.best_val_loss = float(state["best_val_loss"])
        result.best_monitored = float(state.get("best_monitored", result.best_val_loss))
        epoch = int(state["epoch"])
        best = dict(state["best_weights"])
    except (KeyError, RuntimeError, ValueError, TypeError) as error:
        raise ModelFolderError(f"{what} {path} does not fit this model or run: {error}") from error
    result.resumed_from_epoch = epoch
    logger.info("%s: resuming from %s after epoch %d", ctx.name, path, epoch)
    return epoch, best


# --- fit -------------------------------------------------------------------------------------------------


def make_scheduler(
    optimizer: torch.optim.Optimizer, stage: StageConfig, steps_per_epoch: int | None, name: str = "stage"
) -> Scheduler:
    """The learning-rate schedule ``stage.schedule`` asks for.

    ``plateau``: ReduceLROnPlateau, stepped once per epoch with the monitored value. ``cosine``: stepped after
    every optimisation step, from ``stage.lr`` down to ``stage.min_lr`` over ``epochs * steps_per_epoch``
    steps, and held at ``min_lr`` beyond them.
    """
    if stage.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=stage.plateau_factor, patience=stage.plateau_patience, min_lr=stage.min_lr
        )
    if not steps_per_epoch:
        raise ValueError(f"{name}: the cosine schedule needs a training loader of known length or max_steps_per_epoch")
    total = stage.epochs * steps_per_epoch
    floor = min(stage.min_lr / stage.lr, 1.0) if stage.lr > 0 else 1.0

    def factor(step: int) -> float:
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _averaged(model: nn.Module, decay: float | None) -> AveragedModel | None:
    """An EMA copy of ``model``'s parameters (buffers are copied, then BatchNorm's recomputed), or None."""
    if decay is None:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))


def _monitored_value(monitor: str, val_loss: float, metrics: dict[str, float], name: str) -> float:
    """The value the schedule and early stopping minimise: the validation loss, or minus a metric.

    A metric that is missing or not finite this epoch (e.g. AUROC on a validation set where no label has
    both classes) falls back to the loss, with a warning, so training still selects weights.
    """
    if monitor == "val_loss":
        return val_loss
    value = metrics.get(monitor, math.nan)
    if math.isfinite(value):
        return -float(value)
    logger.warning("%s: validation %s unavailable this epoch; following the validation loss", name, monitor)
    return val_loss


def fit(
    model: nn.Module,
    *,
    train_loader: Batches,
    val_loader: Batches | None,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    stage: StageConfig,
    device: torch.device | str,
    name: str,
    log_dir: Path,
    amp: bool = True,
    input_transform: Callable[[Tensor], Tensor] | None = None,
    val_metrics: Callable[[Tensor, Tensor], dict[str, float]] | None = None,
    checkpoint_path: Path | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` in place and leave the best-validation weights in it.

    Loaders yield ``(inputs, targets)``. ``input_transform`` (e.g. a frozen denoiser in eval mode) runs on
    the device under ``torch.no_grad`` before the model. ``val_metrics(outputs, targets)`` gets the whole
    validation set's outputs concatenated on the CPU (meant for classifier logits, not full-size masks).
    Mixed precision, when ``amp`` is True: float16 autocast with a GradScaler on CUDA, bfloat16 autocast (no
    scaler) on a CPU when ``DERC_BF16=1`` (:func:`derc.runtime.use_bf16`).
    The learning rate follows ``stage.schedule`` (:func:`make_scheduler`). With ``stage.ema_decay`` an
    exponential moving average of the weights is kept, its BatchNorm statistics recomputed after each epoch on
    that epoch's last ``stage.ema_bn_images`` training inputs, and it is validated and returned instead.
    Writes ``log_dir/{name}_log.csv`` and ``log_dir/{name}_curves.png`` every epoch, and a checkpoint to
    ``checkpoint_path`` (when given); if that file exists the run resumes from it.
    """
    if stage.monitor != "val_loss" and val_metrics is None:
        raise ValueError(f"{name}: monitor {stage.monitor!r} needs validation metrics; use 'val_loss'")
    device = torch.device(device)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    model.to(device=device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=stage.lr, weight_decay=stage.weight_decay)
    scheduler = make_scheduler(optimizer, stage, _count(train_loader, stage.max_steps_per_epoch), name)
    use_amp = bool(amp) and device.type == "cuda"
    amp_dtype = None
    if bool(amp) and device.type == "cpu" and use_bf16(device):
        use_amp, amp_dtype = True, torch.bfloat16
    ctx = _Context(
        model=model,
        train_loader=train_loader,
        val_loader=val_loader,
        loss_fn=loss_fn,
        stage=stage,
        device=device,
        name=name,
        use_amp=use_amp,
        amp_dtype=amp_dtype,
        input_transform=input_transform,
        val_metrics=val_metrics,
        progress=progress,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype is None),
        trained=distributed.wrap(model, device),
        averaged=_averaged(model, stage.ema_decay),
    )
    main = distributed.info().is_main
    stopper = EarlyStopping(stage.early_stopping_patience)
    result = FitResult()
    best = _cpu_copy(model.state_dict())
    start = 0
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        start, best = _resume(Path(checkpoint_path), ctx, stopper, result)

    for epoch in range(start + 1, stage.epochs + 1):
        if stopper.should_stop:
            break
        began = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        train_loss = distributed.mean(_train_epoch(ctx, epoch))
        train_seconds = time.perf_counter() - began
        _recalibrate(ctx)
        if val_loader is not None:
            val_loss, metrics = _evaluate(ctx, epoch)
            # Every rank must take the same scheduling and stopping decisions.
            val_loss = distributed.mean(val_loss)
            monitored = _monitored_value(stage.monitor, val_loss, metrics, name)
        else:
            val_loss, metrics, monitored = math.nan, {}, train_loss
        if not ctx.per_step_schedule:
            scheduler.step(monitored)
        if stopper.step(monitored):
            best = _cpu_copy(ctx.evaluated.state_dict())
            result.best_epoch, result.best_val_loss = epoch, val_loss if val_loader is not None else train_loss
            result.best_monitored = monitored
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "lr": lr}
        row |= {"seconds": round(time.perf_counter() - began, 3), **metrics}
        result.history.append(row)
        result.speed.append(
            {
                "epoch": epoch,
                "train_seconds": train_seconds,
                "data_seconds": ctx.data_seconds,
                "images_per_s": ctx.train_images * distributed.info().world_size / max(train_seconds, 1e-9),
            }
        )
        if main:
            _write_log(log_dir / f"{name}_log.csv", result.history)
            _plot_curves(log_dir / f"{name}_curves.png", result.history, name)
            shown = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch")
            data_share = ctx.data_seconds / max(train_seconds, 1e-9)
            logger.info("%s epoch %d/%d: %s data=%.0f%%", name, epoch, stage.epochs, shown, 100 * data_share)
            if checkpoint_path is not None:
                _save_checkpoint(Path(checkpoint_path), ctx, stopper, result, best, epoch)
        distributed.barrier()

    result.stopped_early = stopper.should_stop
    if result.stopped_early:
        logger.info(
            "%s: early stop, best epoch %d (%s %.4g)",
            name,
            result.best_epoch,
            stage.monitor,
            abs(result.best_monitored),
        )
    model.load_state_dict(best)
    return result
