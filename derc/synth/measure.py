"""Simple ECG measurements on 12-lead signals (rate, RR regularity, QRS/PR, ST level, Q waves, voltages).

Meant for checking synthetic records (clean or mildly noisy), not as a clinical-grade delineator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, find_peaks, sosfiltfilt

from derc.labels import LEADS

_IDX = {name: i for i, name in enumerate(LEADS)}
_INDEPENDENT = [_IDX[n] for n in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]


def r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """QRS locations (sample indices) from the smoothed spatial velocity of the band-passed leads.

    A peak closer than 0.36 s to the previous one and under 45% of its height is taken for a T wave.
    """
    sos = butter(2, [1.0, min(40.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    filtered = sosfiltfilt(sos, signal[:, _INDEPENDENT], axis=0)
    velocity = uniform_filter1d(np.abs(np.diff(filtered, axis=0)).sum(axis=1), max(1, round(0.04 * fs)))
    peaks, props = find_peaks(velocity, height=0.3 * np.percentile(velocity, 99.5), distance=max(1, round(0.22 * fs)))
    kept: list[int] = []
    for p, h in zip(peaks, props["peak_heights"]):
        if kept and p - kept[-1] < 0.36 * fs and h < 0.45 * velocity[kept[-1]]:
            continue
        kept.append(int(p))
    return np.array(kept, dtype=int)


def heart_rate(peaks: np.ndarray, fs: float) -> float:
    return float(60.0 * fs / np.median(np.diff(peaks)))


def rr_cv(peaks: np.ndarray) -> float:
    """Coefficient of variation of the RR intervals."""
    rr = np.diff(peaks).astype(float)
    return float(rr.std() / rr.mean())


@dataclass
class Beat:
    onset: int
    offset: int


def _sustained_below(v: np.ndarray, thr: float, run: int) -> np.ndarray:
    """Boolean: v stays below thr for `run` samples starting at each index."""
    below = (v < thr).astype(int)
    csum = np.concatenate([[0], np.cumsum(below)])
    out = np.zeros(v.size, dtype=bool)
    out[: v.size - run + 1] = (csum[run:] - csum[:-run]) == run
    return out


def qrs_bounds(
    signal: np.ndarray, fs: float, peaks: np.ndarray, rel: float = 0.06, half_window: float = 0.2
) -> list[Beat]:
    """QRS onset/offset per detected beat from the spatial velocity (sum of |slope| over leads)."""
    vel = np.abs(np.diff(signal[:, _INDEPENDENT], axis=0)).sum(axis=1) * fs
    run, half = max(2, round(0.01 * fs)), round(half_window * fs)
    beats = []
    for p in peaks:
        lo, hi = max(p - half, 0), min(p + half, vel.size)
        if hi - lo < half:
            continue
        seg = vel[lo:hi]
        top = int(np.argmax(seg))
        quiet = _sustained_below(seg, rel * seg[top], run)
        before = np.flatnonzero(quiet[:top])
        after = np.flatnonzero(quiet[top:])
        if before.size == 0 or after.size == 0:
            continue
        beats.append(Beat(lo + before[-1] + run, lo + top + after[0]))
    return beats


def qrs_width(signal: np.ndarray, fs: float, beats: list[Beat]) -> float:
    """Median QRS duration, seconds."""
    return float(np.median([b.offset - b.onset for b in beats]) / fs)


def pr_interval(signal: np.ndarray, fs: float, beats: list[Beat], rel: float = 0.1) -> float:
    """Median PR (P onset to QRS onset), seconds, from the spatial P amplitude before each QRS."""
    values = []
    for b in beats:
        lo = b.onset - round(0.4 * fs)
        if lo < 0:
            continue
        seg = signal[lo : b.onset, _INDEPENDENT] - signal[b.onset, _INDEPENDENT]
        amp = np.sqrt((seg**2).sum(axis=1))
        cand, _ = find_peaks(amp[: seg.shape[0] - round(0.02 * fs)], prominence=0.03)
        if cand.size == 0:
            continue
        peak = int(cand[-1])  # the P wave is the last bump before the QRS
        low = np.flatnonzero((amp[:peak] < rel * amp[peak]) | (np.diff(amp[: peak + 1]) < 0))
        if low.size:
            values.append((b.onset - (lo + low[-1])) / fs)
    return float(np.median(values)) if values else float("nan")


def st_levels(signal: np.ndarray, fs: float, beats: list[Beat], after_j: float = 0.06) -> np.ndarray:
    """Median ST level per lead (mV) at J + after_j relative to the PR baseline (onset - 10 ms), (12,)."""
    rows = []
    for b in beats:
        j, base = b.offset + round(after_j * fs), b.onset - round(0.01 * fs)
        if base >= 0 and j < signal.shape[0]:
            rows.append(signal[j] - signal[base])
    return np.median(np.array(rows), axis=0)


def q_durations(signal: np.ndarray, fs: float, beats: list[Beat], min_depth: float = 0.05) -> np.ndarray:
    """Median duration (s) of an initial negative QRS deflection per lead (0 where the QRS starts upward)."""
    out = np.zeros((len(beats), 12))
    for i, b in enumerate(beats):
        seg = signal[b.onset : b.offset + 1] - signal[b.onset]
        for lead in range(12):
            x = seg[:, lead]
            first = np.flatnonzero(np.abs(x) > 0.02)
            if first.size == 0 or x[first[0]] > 0:
                continue
            positive = np.flatnonzero(x[first[0] :] > 0)
            end = first[0] + positive[0] if positive.size else x.size
            if -x[:end].min() >= min_depth:
                out[i, lead] = end / fs
    return np.median(out, axis=0)


def qrs_extremes(signal: np.ndarray, beats: list[Beat]) -> tuple[np.ndarray, np.ndarray]:
    """Median R (max) and S (-min) amplitude per lead within the QRS, relative to its onset, mV."""
    r = [np.max(signal[b.onset : b.offset + 1] - signal[b.onset], axis=0) for b in beats]
    s = [-np.min(signal[b.onset : b.offset + 1] - signal[b.onset], axis=0) for b in beats]
    return np.median(r, axis=0), np.median(s, axis=0)


def sokolow_lyon(signal: np.ndarray, beats: list[Beat]) -> float:
    """S V1 + max(R V5, R V6), mV."""
    r, s = qrs_extremes(signal, beats)
    return float(s[_IDX["V1"]] + max(r[_IDX["V5"]], r[_IDX["V6"]]))
