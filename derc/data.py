"""Training data: noisy/clean pairs rendered on the fly from record signals, and classifier views.

Every item draws its randomness from ``np.random.default_rng((seed, epoch, index))``, so a run is
reproducible whatever the number of DataLoader workers, and each epoch sees fresh distortions.
Validation datasets keep ``epoch`` fixed so their loss is comparable from epoch to epoch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from derc.config import Config
from derc.images import resize_image
from derc.records import RecordEntry
from derc.render import NoiseConfig, render_ecg
from derc.render.layout import dpi_for_width
from derc.signals import RecordSignal, read_signal

log = logging.getLogger("derc")

# Training pages are never drawn above this resolution (render time grows with the square of the dpi).
MAX_RENDER_DPI = 300.0
# Clean-target pixels at or above this grey level are background (as in the published method).
BACKGROUND_LEVEL = 250


def rgb_to_tensor(rgb: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, height, width) float32 in [0, 1]."""
    resized = resize_image(np.ascontiguousarray(rgb), height, width)
    return torch.from_numpy(resized).permute(2, 0, 1).float().div_(255.0)


def clean_to_target(clean: np.ndarray, height: int, width: int) -> torch.Tensor:
    """(H, W) uint8 black-on-white clean rendering -> (1, height, width) float32 ink mask (1 = waveform)."""
    resized = resize_image(clean, height, width)
    return torch.from_numpy((resized < BACKGROUND_LEVEL).astype(np.float32))[None]


class _EpochDataset(Dataset):
    """A dataset of ``len(entries) * views`` items whose randomness depends on (seed, epoch, index)."""

    def __init__(self, entries: Sequence[RecordEntry], config: Config, *, views: int, seed: int) -> None:
        self.entries = list(entries)
        self.config = config
        self.views = max(1, int(views))
        self.seed = int(seed)
        self.epoch = 0
        self.noise = NoiseConfig().scaled(config.noise_level)
        native, (low, high) = dpi_for_width(config.image_width), config.render_dpi_scale
        self.dpi_range = (min(native * low, MAX_RENDER_DPI), min(native * high, MAX_RENDER_DPI))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.entries) * self.views

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, index))

    def _render(self, entry: RecordEntry, rng: np.random.Generator):
        return self._draw(read_signal(entry.path), rng)

    def _draw(self, record: RecordSignal, rng: np.random.Generator):
        layout = self.config.layouts[int(rng.integers(len(self.config.layouts)))]
        low, high = self.dpi_range
        dpi = low if high <= low else float(rng.uniform(low, high))
        return render_ecg(record.signal, record.fs, layout=layout, dpi=dpi, rng=rng, noise=self.noise)


class DenoisingPairs(_EpochDataset):
    """(noisy RGB image, clean ink mask) pairs rendered from each record's signal."""

    def __init__(self, entries: Sequence[RecordEntry], config: Config, *, views: int, seed: int) -> None:
        super().__init__([e for e in entries if e.has_signal], config, views=views, seed=seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        entry = self.entries[index // self.views]
        rendering = self._render(entry, self._rng(index))
        h, w = self.config.image_height, self.config.image_width
        return rgb_to_tensor(rendering.noisy, h, w), clean_to_target(rendering.clean, h, w)


class ClassifierViews(_EpochDataset):
    """(noisy RGB image, label vector): a fresh rendering, or one of the record's own images."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        entry = self.entries[index // self.views]
        rng = self._rng(index)
        h, w = self.config.image_height, self.config.image_width
        own = self.config.use_record_images and bool(entry.image_files)
        # Records with both sources use their own images half of the time (real scans/photos, when
        # present, are closer to test images than our renderings); records without signals only them.
        if own and (not entry.has_signal or rng.random() < 0.5):
            rgb = load_own_image(entry, rng)
            if rgb is not None:
                return rgb_to_tensor(rgb, h, w), torch.from_numpy(entry.labels)
            if not entry.has_signal:
                return torch.ones(3, h, w), torch.from_numpy(entry.labels)
        rendering = self._render(entry, rng)
        image = cv2.cvtColor(rendering.clean, cv2.COLOR_GRAY2RGB) if self.config.clean_inputs else rendering.noisy
        return rgb_to_tensor(image, h, w), torch.from_numpy(entry.labels)


class SignalPages(_EpochDataset):
    """(noisy page as uint8 (H, W, 3) at the input size, record fs, record samples, label vector) for stage C.

    The page is what the UNet and the digitizer see at inference (the image resized to the model's input); fs
    and the sample count are the record's, at which the digitizer writes the signal. Only records with signals.
    """

    def __init__(self, entries: Sequence[RecordEntry], config: Config, *, views: int, seed: int) -> None:
        super().__init__([e for e in entries if e.has_signal], config, views=views, seed=seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        entry = self.entries[index // self.views]
        rng = self._rng(index)
        record = read_signal(entry.path)
        rendering = self._draw(record, rng)
        page = resize_image(np.ascontiguousarray(rendering.noisy), self.config.image_height, self.config.image_width)
        return (
            torch.from_numpy(page),
            torch.tensor(record.fs, dtype=torch.float64),
            torch.tensor(record.signal.shape[0]),
            torch.from_numpy(entry.labels),
        )


class JitteredSignals(Dataset):
    """Signal-classifier inputs and labels; with ``gain`` each item's leads are scaled by 1 + N(0, gain) drawn
    from (seed, epoch, index), so every epoch sees other amplitudes and a run is reproducible."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor, *, leads: int, gain: float = 0.0, seed: int = 0):
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs for {len(labels)} label vectors")
        self.inputs, self.labels, self.leads = inputs, labels, int(leads)
        self.gain, self.seed, self.epoch = float(gain), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.inputs[index].float()
        if self.gain > 0:
            scale = 1.0 + self.gain * np.random.default_rng((self.seed, self.epoch, index)).standard_normal()
            x = torch.cat([x[: self.leads] * float(scale), x[self.leads :]])
        return x, self.labels[index].float()


def load_own_image(entry: RecordEntry, rng: np.random.Generator) -> np.ndarray | None:
    """One of the record's own image files as RGB, or None (logged) when it cannot be used."""
    name = entry.image_files[int(rng.integers(len(entry.image_files)))]
    path = Path(entry.path).parent / name
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Exception as error:
        log.warning("record %s: image %s unusable for training (%s)", entry.path, name, error)
        return None


class CachedItems(Dataset):
    """Every item of a fixed dataset, computed once and then served from memory.

    For validation sets, whose epoch never advances (the same renderings every epoch): rendering them again
    each epoch costs more CPU than the validation forward passes. Tensors whose values are all k/255 (the
    rendered images and binary masks) are kept as uint8 and restored bit for bit; any other tensor is kept
    as it is. ``dataset`` is read at epoch 0, through a loader with ``num_workers`` workers.
    """

    def __init__(self, dataset: _EpochDataset, *, num_workers: int = 0, batch_size: int = 16) -> None:
        from derc.runtime import worker_init_fn

        dataset.set_epoch(0)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=False,
            num_workers=num_workers,
            worker_init_fn=worker_init_fn if num_workers else None,
            generator=torch.Generator().manual_seed(0),  # its seed draw leaves the global RNG (model init) alone
        )
        columns: list[list[torch.Tensor]] = []
        for batch in loader:
            if not columns:
                columns = [[] for _ in batch]
            for column, values in zip(columns, batch):
                column.append(_compact(values))
        self._columns: list[torch.Tensor] = []
        self._dtypes: list[torch.dtype | None] = []
        for parts in columns:
            dtypes = {dtype for _, dtype in parts}
            if len(dtypes) > 1:  # some batches were not k/255 exact: keep the whole column as it came
                parts = [(_restore(values, dtype), None) for values, dtype in parts]
            self._columns.append(torch.cat([values for values, _ in parts]))
            self._dtypes.append(parts[0][1])

    @property
    def nbytes(self) -> int:
        return sum(column.numel() * column.element_size() for column in self._columns)

    def set_epoch(self, epoch: int) -> None:  # the items are fixed
        pass

    def __len__(self) -> int:
        return len(self._columns[0]) if self._columns else 0

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(_restore(column[index], dtype) for column, dtype in zip(self._columns, self._dtypes))


def _compact(values: torch.Tensor) -> tuple[torch.Tensor, torch.dtype | None]:
    """``values`` as uint8 with the float dtype to restore (when k/255 is exact for all of them), else as is."""
    if values.is_floating_point():
        levels = (values * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        if torch.equal(levels.to(values.dtype).div_(255.0), values):
            return levels, values.dtype
    return values, None


def _restore(values: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return values if dtype is None else values.to(dtype).div_(255.0)


def cache_if_small(dataset: _EpochDataset, *, budget_mb: float, num_workers: int = 0) -> Dataset:
    """``dataset`` held in memory (:class:`CachedItems`) when its 8-bit size fits ``budget_mb`` MiB, else itself."""
    if budget_mb <= 0 or len(dataset) == 0:
        return dataset
    item_bytes = sum(t.numel() for t in dataset[0])  # uint8 storage; the label vectors are tiny
    needed_mb = item_bytes * len(dataset) / 2**20
    if needed_mb > budget_mb:
        log.info("validation views not cached: %.0f MiB needed, budget %.0f MiB", needed_mb, budget_mb)
        return dataset
    started = time.perf_counter()
    cached = CachedItems(dataset, num_workers=num_workers)
    log.info(
        "%d validation views cached in memory (%.0f MiB, %.1f s)",
        len(cached),
        cached.nbytes / 2**20,
        time.perf_counter() - started,
    )
    return cached


class EpochLoader:
    """A DataLoader that tells its dataset the epoch before each pass (fresh distortions every epoch)."""

    def __init__(self, dataset: _EpochDataset, loader: DataLoader, *, first_epoch: int = 0, advance: bool = True):
        self.dataset = dataset
        self.loader = loader
        self.epoch = first_epoch
        self.advance = advance

    @property
    def generator(self) -> torch.Generator | None:
        """The shuffling generator (saved and restored with training checkpoints)."""
        return self.loader.generator

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        self.dataset.set_epoch(self.epoch)
        if isinstance(self.loader.sampler, DistributedSampler):
            self.loader.sampler.set_epoch(self.epoch)
        if self.advance:
            self.epoch += 1
        return iter(self.loader)


def make_loader(
    dataset: _EpochDataset,
    *,
    batch_size: int,
    shuffle: bool,
    num_workers: int,
    seed: int,
    pin_memory: bool = False,
    shard: bool = False,
) -> EpochLoader:
    """A loader over ``dataset``; ``shard`` splits it between the ranks of a process group (torchrun)."""
    from derc.distributed import info
    from derc.runtime import worker_init_fn

    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if shard and info().active:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=False,
        worker_init_fn=worker_init_fn if num_workers else None,
        generator=generator,
        pin_memory=pin_memory,
        drop_last=False,
    )
    return EpochLoader(dataset, loader, advance=shuffle)
