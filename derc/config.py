"""One typed training configuration with named presets, saved beside the weights as JSON.

Choose a preset without touching the Challenge signatures through the ``DERC_PRESET``
environment variable (``paper`` when unset). Fields of a preset can be overridden with
``dataclasses.replace`` in code, never by mutating a shared object.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from derc.fileio import write_json_atomic
from derc.thresholds import THRESHOLD_RULES

CONFIG_FORMAT_VERSION = 1
PRESET_ENV = "DERC_PRESET"
CONFIG_ENV = "DERC_CONFIG"  # a config.json (as saved beside the weights); overrides DERC_PRESET
DEFAULT_PRESET = "paper"
DENOISERS = ("unet", "none")
SCHEDULES = ("plateau", "cosine")
SIGNAL_BLENDS = ("macro", "label")


@dataclass(frozen=True)
class StageConfig:
    """Optimiser, schedule and stopping rules of one training stage (UNet or classifier)."""

    epochs: int = 100
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    plateau_patience: int = 7
    plateau_factor: float = 0.1
    min_lr: float = 1e-6
    early_stopping_patience: int = 10
    # Noisy renderings per training record per epoch (fresh distortions every epoch).
    views_per_record: int = 1
    # Cap on optimisation steps per epoch (None: one pass over the data).
    max_steps_per_epoch: int | None = None
    # What the LR schedule, early stopping and best-weight choice follow: "val_loss" (minimised) or a
    # validation metric of the stage (maximised), e.g. "macro_auroc" for the classifier.
    monitor: str = "val_loss"
    # Learning-rate schedule: "plateau" (the method's ReduceLROnPlateau on the monitored value, per epoch) or
    # "cosine" (per step, from lr down to min_lr over all epochs x steps per epoch: for fixed, short budgets
    # where the plateau rule never fires and the last epochs would otherwise train at full lr).
    schedule: str = "plateau"
    # Exponential moving average of the weights (torch.optim.swa_utils.AveragedModel), updated after every
    # optimisation step with this decay; when set, validation, the best-epoch choice and the saved weights are
    # the average's. None: the trained weights themselves (the method).
    ema_decay: float | None = None
    # The average's BatchNorm statistics are recomputed after each epoch (torch's update_bn) on the training
    # inputs of the epoch's last steps, at least this many images (kept on the device meanwhile): statistics
    # of the trained weights do not fit averaged ones (validation AUROC 0.66 with them, 0.88 recomputed).
    ema_bn_images: int = 256

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be None or strictly between 0 and 1, got {self.ema_decay}")
        if self.ema_bn_images < 1:
            raise ValueError(f"ema_bn_images must be >= 1, got {self.ema_bn_images}")


@dataclass(frozen=True)
class LossConfig:
    """Dice + beta * Focal, Focal = alpha * (1 - exp(-BCE))**gamma * BCE; eta smooths Dice."""

    alpha: float = 0.25
    gamma: float = 2.0
    beta: float = 10.0
    eta: float = 1.0


@dataclass(frozen=True)
class Config:
    preset: str = DEFAULT_PRESET
    seed: int = 0
    # Model input size (height, width); renders are drawn near this size and resized to it.
    image_height: int = 896
    image_width: int = 1152
    unet_width: int = 64
    unet_depth: int = 4
    classifier: str = "resnet18"
    # What the classifier sees: "unet" (the DeRC ink map) or "none" (1 - grey level of the image itself;
    # the ablation "classifier on raw images").
    denoiser: str = "unet"
    # Train the classifier on the renderer's clean trace images instead of noisy pages (with denoiser
    # "none" and clean test images, this is the accuracy ceiling of a perfect denoiser).
    clean_inputs: bool = False
    # Local torchvision weights file for the classifier backbone (never downloaded).
    classifier_weights: str | None = None
    loss: LossConfig = field(default_factory=LossConfig)
    unet: StageConfig = field(default_factory=lambda: StageConfig(batch_size=4))
    cls: StageConfig = field(default_factory=lambda: StageConfig(batch_size=16))
    # Stage C, beside the method's image classifier: digitize each page's ink map (derc.digitize) and classify
    # the signal with a 1D CNN (derc.models.signal); the two probabilities are blended with a weight chosen on
    # validation. On the accuracy benchmark's clean 224x288 pages the digitized signals alone reach 0.88 macro F
    # where the image classifier reaches 0.69 (BENCHMARKS.md).
    signal_branch: bool = False
    signal_hz: float = 50.0  # the signal classifier's sampling rate (pages at 224x288 hold ~25 px per s)
    # How the blend weight is chosen on validation: "macro" (one weight, best macro AUROC) or "label" (each
    # label its own weight, best AUROC of that label; ties go to the macro weight).
    signal_blend: str = "macro"
    # Two digitized noisy pages per training record: with one, the 1D CNN ended at training loss 0.05 against
    # validation 0.13. On the accuracy benchmark's seed-1 model (same UNet, image classifier and test pages) two
    # raised validation macro AUROC 0.971 -> 0.981 and test macro F 0.891 -> 0.899 (PAC 0.70 -> 0.80), on pages
    # of another renderer 0.821 -> 0.841 (AUROC 0.955 -> 0.965); on seed 0's, test macro F 0.848 -> 0.909. For
    # twice stage C's digitizing and epochs (+11 min on a slow 2-core host; BENCHMARKS.md, "Two digitized pages
    # per record").
    sig: StageConfig = field(
        default_factory=lambda: StageConfig(
            epochs=20,
            batch_size=32,
            lr=1e-3,
            plateau_patience=3,
            early_stopping_patience=6,
            monitor="macro_auroc",
            views_per_record=2,
        )
    )
    val_fraction: float = 0.2
    # How the per-label thresholds are chosen on the validation split: "youden" (Youden's J, the method's rule)
    # or "f1" (each label's best F-measure, what the Challenge scores); see derc.thresholds.
    threshold_rule: str = "youden"
    # Page layouts the renderer draws training images with.
    layouts: tuple[str, ...] = ("3x4", "6x2", "12x1")
    # Overall strength of the renderer's distortions (0 = clean paper, 1 = default).
    noise_level: float = 1.0
    # Training pages are drawn at a dpi uniformly between these multiples of the model's own dpi (at most
    # 300 dpi) and area-resized to the input size, as scans and photos are at inference. Drawing straight
    # at the input size gives thinner, differently anti-aliased traces and grids than a resized scan: a
    # small-preset classifier trained that way lost 0.12 AUROC on resized 100-dpi pages (BENCHMARKS.md).
    render_dpi_scale: tuple[float, float] = (1.0, 2.0)
    # Also train the classifier on the record's own ``# Image:`` files when present.
    use_record_images: bool = True
    # DataLoader workers rendering training pages; None: one per CPU core beyond the training process's own
    # (derc.runtime.data_workers). Pages are drawn on the fly, so a GPU needs many (paper-size renders ~3/s each).
    num_workers: int | None = None
    # Validation views are the same renderings every epoch: they are drawn once and kept in memory (8-bit)
    # when they fit in this many MiB per process (0: draw them again each epoch; None: a quarter of the
    # available memory, derc.runtime.cache_budget_mb). An 896x1152 pair takes 4 MiB, a view 3 MiB.
    val_cache_mb: float | None = None
    amp: bool = True  # mixed precision: fp16 + GradScaler on CUDA; bf16 on a CPU only with DERC_BF16=1
    max_records: int | None = None

    def __post_init__(self) -> None:
        if self.denoiser not in DENOISERS:
            raise ValueError(f"unknown denoiser {self.denoiser!r}; choose one of {', '.join(DENOISERS)}")
        if not self.signal_hz > 0:
            raise ValueError(f"signal_hz must be > 0, got {self.signal_hz}")
        if self.signal_blend not in SIGNAL_BLENDS:
            raise ValueError(f"unknown signal_blend {self.signal_blend!r}; choose one of {', '.join(SIGNAL_BLENDS)}")
        if self.threshold_rule not in THRESHOLD_RULES:
            rules = ", ".join(THRESHOLD_RULES)
            raise ValueError(f"unknown threshold_rule {self.threshold_rule!r}; choose one of {rules}")
        low, high = self.render_dpi_scale
        if not 1.0 <= low <= high:
            raise ValueError(f"render_dpi_scale must satisfy 1 <= low <= high, got {self.render_dpi_scale}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["format_version"] = CONFIG_FORMAT_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        data = dict(data)
        version = data.pop("format_version", None)
        if version != CONFIG_FORMAT_VERSION:
            raise ValueError(f"unsupported config format version {version!r} (expected {CONFIG_FORMAT_VERSION})")
        return _build(cls, data, "config")

    def save(self, path: str | os.PathLike[str]) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Config:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read config {path}: {error}") from error
        if not isinstance(data, dict):
            raise ValueError(f"config {path} is not a JSON object")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid config {path}: {error}") from error


def _build(kind: type, data: dict[str, Any], where: str) -> Any:
    """Build a (nested) frozen dataclass from JSON data, rejecting unknown or mistyped fields."""
    known = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown field(s) in {where}: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        default = getattr(kind(), name) if name in known else None
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{name} must be an object")
            value = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):
            value = tuple(value)
        values[name] = value
    return kind(**values)


PRESETS: dict[str, Config] = {
    # The published method: 896x1152 inputs, UNet width 64, ResNet18, Adam 1e-4, patience 7/10.
    # The classifier's best epoch follows validation macro AUROC (what the thresholds build on) rather than
    # the BCE loss, which on imbalanced labels can be lowest at the first epoch.
    "paper": Config(preset="paper", cls=StageConfig(batch_size=16, monitor="macro_auroc")),
    # A GPU-friendly middle ground for quick experiments.
    "medium": Config(
        preset="medium",
        image_height=448,
        image_width=576,
        unet_width=16,
        unet=StageConfig(epochs=20, batch_size=8, views_per_record=1),
        cls=StageConfig(epochs=30, batch_size=32, views_per_record=2, monitor="macro_auroc"),
    ),
    # CPU preset for demos: 400 synthetic records train in about 15 minutes on 2 cores.
    "small": Config(
        preset="small",
        image_height=224,
        image_width=288,
        unet_width=8,
        # Measured (BENCHMARKS.md): UNet lr 1e-3 denoises far better in 5 epochs than 1e-4 in 4 (validation
        # loss 0.41 vs 0.78). With batch 32 the classifier got 10 updates per epoch and stayed near chance for
        # 5-6 epochs; batch 8 gives 4x the updates for the same CPU time (AUROC 0.62 after 2 epochs), and the
        # best epoch follows validation AUROC, on whose ranking the thresholds rest, rather than a BCE loss that
        # can be lowest at epoch 1 (the priors). The classifier keeps an EMA of its weights: on the accuracy
        # benchmark, with the same trained weights, it raised validation AUROC 0.887 -> 0.901 and test macro F
        # 0.679 -> 0.688 on 500 records.
        unet=StageConfig(epochs=5, batch_size=8, lr=1e-3, early_stopping_patience=3, plateau_patience=2),
        cls=StageConfig(
            epochs=10,
            batch_size=8,
            lr=3e-4,
            early_stopping_patience=4,
            plateau_patience=2,
            monitor="macro_auroc",
            ema_decay=0.99,
        ),
        # Test pages at 100 dpi are ~4x the input's 26 dpi; drawing at 1.5-4x keeps rendering cheap enough.
        render_dpi_scale=(1.5, 4.0),
        num_workers=2,
        amp=False,
        # Stage C: on the accuracy benchmark (500 test records) 0.869 macro F / 0.969 AUROC at seed 0 (blend
        # weight 1.0, the signal alone) and 0.855 / 0.971 at seed 1 (0.9), where the image classifier alone
        # scores 0.688 / 0.897 (seed 1: AUROC 0.898); ~4 min more training on 2 cores.
        signal_branch=True,
        # Thresholds at each label's best validation F-measure (taken halfway into the gap below the cut, as the
        # Youden rule is): on the accuracy benchmark's 600 validation / 500 test records 0.848 vs 0.838 test macro
        # F (seed 0), 0.891 vs 0.871 (seed 1) and 0.853 vs 0.807 (seed 2), and on seed 1's pages of another
        # renderer 0.821 vs 0.803; on the quick start's 80 validation records 0.583 vs 0.547,
        # 0.548 vs 0.533 and 0.579 vs 0.584 (BENCHMARKS.md, "Threshold rules").
        threshold_rule="f1",
    ),
    # For tests: seconds, not minutes.
    "tiny": Config(
        preset="tiny",
        image_height=64,
        image_width=96,
        unet_width=4,
        unet_depth=2,
        unet=StageConfig(epochs=1, batch_size=4, early_stopping_patience=2, plateau_patience=1),
        cls=StageConfig(
            epochs=2, batch_size=8, early_stopping_patience=2, plateau_patience=1, lr=1e-3, monitor="macro_auroc"
        ),
        render_dpi_scale=(1.0, 1.0),
        num_workers=0,
        amp=False,
    ),
}


def get_preset(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def preset_from_env() -> Config:
    """The settings the Challenge entry points train with: the config file named by ``DERC_CONFIG`` (a
    ``config.json`` as saved beside the weights, edited at will), else the preset named by ``DERC_PRESET``
    (``paper`` when unset or empty)."""
    path = os.environ.get(CONFIG_ENV, "").strip()
    if path:
        return Config.load(path)
    return get_preset(os.environ.get(PRESET_ENV, "").strip() or DEFAULT_PRESET)
