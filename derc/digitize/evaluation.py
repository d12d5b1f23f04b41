"""Pages with known signals for the digitizer's tests and benchmark, and the Challenge's SNR on them.

Needs the repository root on ``sys.path`` (``helper_code`` and ``evaluate_model`` live there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from derc.labels import LEADS
from derc.render import GridColour, NoiseConfig, render_ecg
from derc.render.layout import page_layout

UNET_SHAPE = (896, 1152)  # (height, width) of the UNet's ink maps


@dataclass(frozen=True)
class InkPage:
    """An ink map (1 = waveform), the noisy RGB photo at its size and the homography from undistorted page
    pixels at ``dpi`` to them."""

    ink: np.ndarray
    page_to_image: np.ndarray
    dpi: float
    photo: np.ndarray


def only(**probabilities: float) -> NoiseConfig:
    """Default strengths with every distortion off except the named ``*_p`` probabilities."""
    off = {f.name: 0.0 for f in dataclasses.fields(NoiseConfig) if f.name.endswith("_p")}
    return dataclasses.replace(NoiseConfig(), **{**off, **probabilities})


CLEAN = NoiseConfig().scaled(0.0)
DISTORTIONS: dict[str, NoiseConfig] = {
    "clean": CLEAN,
    "rotation": only(rotation_p=1.0),
    "perspective": only(perspective_p=1.0),
    "wrinkles": only(wrinkle_p=1.0, crease_p=1.0),
    "crop": only(crop_p=0.5, pad_p=0.5),
    "noisy": NoiseConfig(),
}


def render_ink(
    signal: np.ndarray,
    fs: float,
    layout: str,
    *,
    rng: np.random.Generator,
    noise: NoiseConfig = CLEAN,
    dpi: float = 200.0,
    shape: tuple[int, int] | None = UNET_SHAPE,
    grid: GridColour = "red",
) -> InkPage:
    """Render with :func:`derc.render.render_ecg` ; its clean image as ink, resized to ``shape`` (None: as is).

    The grid is red unless asked otherwise (the seeded benchmark and test pages were drawn red; the photo's grid
    map, :mod:`derc.digitize.grid`, reads grey and coloured grids too, less surely than red ones).
    """
    r = render_ecg(signal, fs, leads=LEADS, layout=layout, dpi=dpi, rng=rng, noise=noise, grid=grid)
    ink = 1.0 - r.clean.astype(np.float32) / 255.0
    photo = r.noisy
    hom = r.page_to_image
    if shape is not None and ink.shape != shape:
        sy, sx = shape[0] / ink.shape[0], shape[1] / ink.shape[1]
        ink = cv2.resize(ink, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        photo = cv2.resize(photo, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        # pixel centres: x' = (x + 0.5) * s - 0.5
        scale = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
        hom = scale @ hom
    return InkPage(np.ascontiguousarray(ink), hom, dpi, photo)


def degrade(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An imperfect-UNet-like ink map: blur, soft gain, short breaks in the trace, speckle, noise."""
    out = cv2.GaussianBlur(ink, (0, 0), rng.uniform(0.5, 1.0)) * rng.uniform(0.75, 1.0)
    h, w = out.shape
    for _ in range(int(rng.integers(5, 20))):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        out[max(0, y - 20) : y + 20, x : x + int(rng.integers(1, 4))] = 0.0
    speckle = cv2.GaussianBlur((rng.random((h, w)) > 0.9997).astype(np.float32), (0, 0), 1.0) * 6
    return np.clip(out + speckle + rng.normal(0, 0.05, out.shape).astype(np.float32), 0, 1).astype(np.float32)


def shown_mask(layout: str, n: int, fs: float) -> np.ndarray:
    """(n, 12) True where the layout shows the lead (lead II whole when there is a rhythm strip)."""
    mask = np.zeros((n, 12), dtype=bool)
    for p in page_layout(layout).panels:
        mask[int(np.ceil(p.t_start * fs - 1e-9)) : int(np.ceil(p.t_end * fs - 1e-9)), LEADS.index(p.lead)] = True
    return mask


def challenge_snr(ref: np.ndarray, est: np.ndarray, fs: float, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-lead SNR (dB) as evaluate_model scores it (aligned, NaN-aware); ``mask`` restricts the reference."""
    from evaluate_model import aligned_estimate
    from helper_code import compute_snr

    ref = np.asarray(ref, dtype=np.float64)
    if mask is not None:
        ref = np.where(mask, ref, np.nan)
    out = np.empty(ref.shape[1])
    for j in range(ref.shape[1]):
        x_est = aligned_estimate(ref[:, j], np.asarray(est[:, j], dtype=np.float64), fs, False)
        out[j] = compute_snr(ref[:, j], x_est)[0]
    return out
