"""Write small Challenge-format records (WFDB header + signal + PNG images) for the tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import wfdb
from PIL import Image

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def ecg_like(num_samples: int, fs: float, num_leads: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth, ECG-ish signals in mV (samples x leads): beats as Gaussian bumps plus a slow wave."""
    t = np.arange(num_samples) / fs
    base = np.zeros(num_samples)
    for beat in np.arange(0.3, t[-1], 0.8):
        base += 1.0 * np.exp(-(((t - beat) / 0.015) ** 2)) + 0.25 * np.exp(-(((t - beat - 0.25) / 0.05) ** 2))
    gains = rng.uniform(0.4, 1.2, size=num_leads)
    offsets = rng.uniform(-0.2, 0.2, size=num_leads)
    return np.round(base[:, None] * gains[None, :] + offsets[None, :], 3)


def write_record(
    folder: str | os.PathLike[str],
    name: str,
    signal: np.ndarray,
    fs: float = 100,
    labels: list[str] | None = None,
    images: dict[str, np.ndarray | bytes] | None = None,
    image_line: bool = True,
) -> Path:
    """Write ``folder/name`` (WFDB fmt 16, gain 1000/mV) with Age/Sex/Labels/Image comments; return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    comments = ["Age: 56", "Sex: Female"]
    if labels is not None:
        comments.append("Labels: " + ", ".join(labels))
    images = images or {}
    if image_line:
        comments.append("Image: " + ", ".join(images))
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * signal.shape[1],
        sig_name=LEADS[: signal.shape[1]],
        p_signal=signal,
        fmt=["16"] * signal.shape[1],
        adc_gain=[1000.0] * signal.shape[1],
        baseline=[0] * signal.shape[1],
        comments=comments,
        write_dir=str(folder),
    )
    for file_name, content in images.items():
        if isinstance(content, bytes):
            (folder / file_name).write_bytes(content)
        else:
            Image.fromarray(content).save(folder / file_name)
    return folder / name


def grey_image(level: int, mode: str = "RGB", size: tuple[int, int] = (24, 16)) -> np.ndarray:
    """A constant image of the given grey level (RGB, RGBA or L array)."""
    channels = {"RGB": 3, "RGBA": 4, "L": 0}[mode]
    shape = (size[1], size[0]) if channels == 0 else (size[1], size[0], channels)
    array = np.full(shape, level, dtype=np.uint8)
    if mode == "RGBA":
        array[..., 3] = 255
    return array
