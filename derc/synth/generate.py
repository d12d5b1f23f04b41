"""Heart parameters -> 12-lead signal: beats, atrial activity, projection, noise, limb-lead derivation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.signal import resample_poly

from derc.synth import beats as beat_mod
from derc.synth.conditions import Heart, sample_heart
from derc.synth.dipole import derive_leads, project, rotation
from derc.synth.noise import electrode_noise
from derc.synth.rhythm import Beats, beat_times, fibrillation, flutter_waves

#: Internal rate used when the requested one is too low to draw narrow waves (then decimated).
MIN_INTERNAL_FS = 400
PAD_S = 0.5


def _beat_arrays(h: Heart, beats: Beats, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-beat component arrays with QT rate adaptation, respiration and beat-to-beat jitter."""
    index, arr = beat_mod.stack_templates(h.templates)
    ti = np.array([index[t] for t in beats.types], dtype=int)
    out = {k: v[ti].copy() for k, v in arr.items()}
    n_beats, k = out["center"].shape
    qt = h.qtc * np.sqrt(np.clip(beats.rr_prev, 0.25, 2.0))
    pivot = out["pivot"]
    stretch = np.clip((qt[:, None] - pivot) / np.maximum(h.qt_nominal - pivot, 0.05), 0.65, 1.5)
    stretch = np.where(out["repol"], stretch, 1.0)
    out["center"] = pivot + (out["center"] - pivot) * stretch + rng.normal(0, 0.0015, (n_beats, k))
    for key in ("sig_l", "sig_r", "flat"):
        out[key] = out[key] * stretch
    resp = np.sin(2 * np.pi * h.rhythm.resp_hz * beats.onsets + rng.uniform(0, 2 * np.pi))
    gain = 1 + h.amp_mod * resp + rng.normal(0, 0.015, n_beats)
    axes = np.array([0.2, 0.3, 1.0]) + rng.normal(0, 0.15, (n_beats, 3))
    angle = np.radians(h.resp_rot) * resp + rng.normal(0, 0.01, n_beats)
    out["vec"] = np.einsum("bij,bkj->bki", rotation(axes, angle), out["vec"]) * gain[:, None, None]
    return out


def _atrial(h: Heart, beats: Beats, n: int, fs: float, t0: float, rng: np.random.Generator) -> np.ndarray:
    if h.rhythm.kind == "af":
        return fibrillation(n, fs, h.f_amp, rng)
    if h.rhythm.kind == "flutter":
        return flutter_waves(n, fs, 60.0 / h.rhythm.flutter_rate, beats.flutter_phase - t0, h.f_amp, rng)
    return np.zeros((n, 3))


def render_heart(
    h: Heart, *, rng: np.random.Generator, fs: int = 500, duration_s: float = 10.0, noise: bool = True
) -> np.ndarray:
    """Signal (round(fs*duration_s), 12) float32 mV for a drawn :class:`Heart`."""
    n_out = round(fs * duration_s)
    factor = int(np.ceil(MIN_INTERNAL_FS / fs)) if fs < MIN_INTERNAL_FS else 1
    fs_in = fs * factor
    pad = PAD_S if factor > 1 else 0.0
    n = round(fs_in * (duration_s + 2 * pad))
    beats = beat_times(h.rhythm, duration_s + pad, rng)
    arrays = _beat_arrays(h, beats, rng)
    vcg = beat_mod.render(arrays, beats.onsets + pad, n, fs_in)
    vcg += _atrial(h, beats, n, fs_in, -pad, rng)
    leads8 = project(vcg, h.dower)
    if noise:
        leads8 += electrode_noise(n, fs_in, h.rhythm.resp_hz, rng)
    if factor > 1:
        leads8 = resample_poly(leads8, 1, factor, axis=0)
        start = round(pad * fs)
        leads8 = leads8[start : start + n_out]
    return derive_leads(leads8[:n_out]).astype(np.float32)


def synthesize(
    labels: Sequence[str],
    *,
    rng: np.random.Generator,
    fs: int = 500,
    duration_s: float = 10.0,
    noise: bool = True,
    age: int | None = None,
    sex: str | None = None,
    variants: Mapping[str, str] | None = None,
) -> np.ndarray:
    """A 12-lead ECG (round(fs*duration_s), 12) float32 mV in LEADS order showing ``labels``' signs."""
    heart = sample_heart(labels, rng, age=age, sex=sex, variants=variants)
    return render_heart(heart, rng=rng, fs=fs, duration_s=duration_s, noise=noise)
