"""Electrode-level noise: baseline wander (< 0.5 Hz), mains hum (50/60 Hz) and EMG (20-150 Hz)."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt


def baseline_wander(
    n: int, fs: float, n_leads: int, amp: float, resp_hz: float, rng: np.random.Generator
) -> np.ndarray:
    """Sum of slow sinusoids (respiration shared across leads plus per-lead drift), (n, n_leads)."""
    t = np.arange(0.0, n / fs + 0.05, 0.04)[:, None]  # slow: draw on a 25 Hz grid, interpolate
    resp = np.sin(2 * np.pi * resp_hz * t + rng.uniform(0, 2 * np.pi)) * rng.normal(0, 0.5, (1, n_leads))
    freqs = rng.uniform(0.03, 0.45, (3, 1, n_leads))
    phases = rng.uniform(0, 2 * np.pi, (3, 1, n_leads))
    weights = rng.uniform(0.2, 1.0, (3, 1, n_leads))
    drift = (weights * np.sin(2 * np.pi * freqs * t[None] + phases)).sum(axis=0)
    coarse = amp * (resp + drift / 1.5)
    fine = np.arange(n) / fs
    return np.stack([np.interp(fine, t[:, 0], coarse[:, i]) for i in range(n_leads)], axis=1)


def mains(n: int, fs: float, n_leads: int, amp: float, freq: float, rng: np.random.Generator) -> np.ndarray:
    """Power-line hum with per-lead amplitude and phase; nothing where fs cannot carry it."""
    if freq >= 0.45 * fs or amp <= 0:
        return np.zeros((n, n_leads))
    t = np.arange(n)[:, None] / fs
    gains = amp * rng.uniform(0.3, 1.0, (1, n_leads))
    return gains * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi, (1, n_leads)))


def emg(n: int, fs: float, n_leads: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    """Band-limited (20-150 Hz) muscle noise with a slowly varying, bursty envelope."""
    high = min(150.0, 0.45 * fs)
    if rms <= 0 or high <= 25.0:
        return np.zeros((n, n_leads))
    sos = butter(2, [20.0, high], btype="bandpass", fs=fs, output="sos")
    white = sosfilt(sos, rng.normal(0, 1, (n, n_leads)), axis=0)
    white /= white.std(axis=0, keepdims=True) + 1e-12
    t = np.arange(n)[:, None] / fs
    env = 1 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.05, 0.4, (1, n_leads)) * t + rng.uniform(0, 6.3, (1, n_leads)))
    return rms * rng.uniform(0.5, 1.2, (1, n_leads)) * np.clip(env, 0.2, None) * white


def electrode_noise(n: int, fs: float, resp_hz: float, rng: np.random.Generator, n_leads: int = 8) -> np.ndarray:
    """All noise for the independent leads (I, II, V1..V6), with a random overall quality level."""
    level = rng.choice([0.4, 1.0, 2.0], p=[0.3, 0.55, 0.15])
    out = baseline_wander(n, fs, n_leads, level * rng.uniform(0.02, 0.12), resp_hz, rng)
    if rng.random() < 0.5:
        out += mains(n, fs, n_leads, level * rng.uniform(0.003, 0.02), float(rng.choice([50.0, 60.0])), rng)
    out += emg(n, fs, n_leads, level * rng.uniform(0.003, 0.015), rng)
    return out
