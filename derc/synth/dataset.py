"""Write synthetic records in the Challenge's WFDB format (16-bit, 1000 adu/mV, mV)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import wfdb

from derc.labels import LEADS
from derc.synth.generate import synthesize
from derc.synth.mix import sample_labels

ImageWriter = Callable[[Path, np.ndarray, int, np.random.Generator], list[str]]
ADC_GAIN = 1000.0


def demographics(rng: np.random.Generator) -> tuple[int, str, int, int]:
    """Age (17-95), sex (52% male), height (cm) and weight (kg)."""
    age = int(np.clip(round(rng.normal(60, 17)), 17, 95))
    sex = "Male" if rng.random() < 0.52 else "Female"
    height = int(np.round(rng.normal(176 if sex == "Male" else 163, 7)))
    weight = int(np.round(np.clip(rng.normal(82 if sex == "Male" else 70, 14), 40, 160)))
    return age, sex, height, weight


def quantize(signal: np.ndarray) -> np.ndarray:
    """Round I and II to the 16-bit grid, then re-derive the limb leads from the stored I and II."""
    limit = 32767 / ADC_GAIN
    q = np.round(np.clip(signal.astype(np.float64), -limit, limit) * ADC_GAIN)
    lead_i, lead_ii = q[:, 0], q[:, 1]
    q[:, 2:6] = np.stack([lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2], 1)
    return np.round(np.clip(q, -32767, 32767)) / ADC_GAIN


def write_record(
    out_dir: Path,
    name: str,
    rng: np.random.Generator,
    *,
    fs: int = 500,
    duration_s: float = 10.0,
    balanced: bool = False,
    image_writer: ImageWriter | None = None,
) -> str:
    """Draw labels, a person and an ECG; write ``out_dir/name.hea/.dat`` (and images)."""
    labels = sample_labels(rng, balanced=balanced)
    age, sex, height, weight = demographics(rng)
    signal = quantize(synthesize(labels, rng=rng, fs=fs, duration_s=duration_s, age=age, sex=sex))
    images: list[str] = []
    if image_writer is not None:
        images = list(image_writer(out_dir / name, signal.astype(np.float32), fs, rng))
    comments = [
        f"Age: {age}",
        f"Sex: {sex}",
        f"Height: {height}",
        f"Weight: {weight}",
        f"Labels: {', '.join(labels)}",
        f"Image: {', '.join(images)}".rstrip(),
    ]
    wfdb.wrsamp(
        record_name=name,
        fs=fs,
        units=["mV"] * len(LEADS),
        sig_name=list(LEADS),
        p_signal=signal,
        fmt=["16"] * len(LEADS),
        adc_gain=[ADC_GAIN] * len(LEADS),
        baseline=[0] * len(LEADS),
        comments=comments,
        write_dir=str(out_dir),
    )
    return name


def write_dataset(
    out_dir: str | Path,
    n: int,
    *,
    seed: int,
    fs: int = 500,
    duration_s: float = 10.0,
    balanced: bool = False,
    image_writer: ImageWriter | None = None,
    progress: bool = True,
) -> list[str]:
    """Write ``n`` records named 00000.. into ``out_dir``; record i depends only on (seed, i)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(max(n - 1, 0))))
    children = np.random.SeedSequence(seed).spawn(n)
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synth", unit="rec")
    names = []
    for i in indices:
        rng = np.random.default_rng(children[i])
        names.append(
            write_record(
                out,
                f"{i:0{width}d}",
                rng,
                fs=fs,
                duration_s=duration_s,
                balanced=balanced,
                image_writer=image_writer,
            )
        )
    return names
