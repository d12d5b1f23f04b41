"""Beat timing (sinus with HRV, ectopy, AF, flutter, SVT) and atrial activity (f and F waves).

Beat types: ``N`` sinus-conducted with its P, ``n`` conducted without a visible P (AF, flutter,
SVT), ``A`` premature atrial beat, ``V`` premature ventricular beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

#: Beats are generated over [-LEAD_IN, duration + LEAD_OUT] s so windows cover the record edges.
LEAD_IN, LEAD_OUT = 1.0, 0.6


@dataclass
class Rhythm:
    kind: str = "sinus"  # sinus | af | flutter | svt
    hr: float = 72.0  # mean ventricular rate (bpm)
    rsa: float = 0.03  # respiratory sinus arrhythmia, relative RR amplitude
    resp_hz: float = 0.25
    af_sigma: float = 0.22  # log-RR spread for AF
    flutter_rate: float = 300.0  # atrial rate (per min) for flutter
    conduction: int = 2  # 0 = variable
    pac: int = 0  # premature atrial beats (count)
    pvc: int = 0  # premature ventricular beats (count); -1 = bigeminy


@dataclass
class Beats:
    onsets: np.ndarray  # QRS onset times (s)
    types: np.ndarray  # beat type letters
    rr_prev: np.ndarray  # preceding RR (s)
    flutter_phase: float = 0.0  # time of the first F-wave (s), flutter only


def _sinus_times(r: Rhythm, end: float, rng: np.random.Generator) -> np.ndarray:
    rr = 60.0 / r.hr
    n = int(np.ceil((end + LEAD_IN) / (rr * (1 - 2 * r.rsa - 0.05)))) + 2
    t_nom = np.arange(n) * rr
    phase, phase2 = rng.uniform(0, 2 * np.pi, 2)
    rel = (
        r.rsa * np.sin(2 * np.pi * r.resp_hz * t_nom + phase)
        + 0.4 * r.rsa * np.sin(2 * np.pi * rng.uniform(0.04, 0.12) * t_nom + phase2)
        + rng.normal(0, 0.006, n)
    )
    times = -LEAD_IN + rng.uniform(0.0, rr) + np.concatenate([[0.0], np.cumsum(rr * (1 + rel))[:-1]])
    return times[times < end]


def _af_times(r: Rhythm, end: float, rng: np.random.Generator) -> np.ndarray:
    rr = 60.0 / r.hr
    n = int(np.ceil((end + LEAD_IN) / (0.28))) + 2
    intervals = np.maximum(rr * np.exp(rng.normal(-0.5 * r.af_sigma**2, r.af_sigma, n)), 0.28)
    times = -LEAD_IN + rng.uniform(0, rr) + np.concatenate([[0.0], np.cumsum(intervals)[:-1]])
    return times[times < end]


def _flutter_times(r: Rhythm, end: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    period = 60.0 / r.flutter_rate
    first = -LEAD_IN - rng.uniform(0, period)
    n_f = int(np.ceil((end - first) / period)) + 2
    steps = np.full(n_f, r.conduction) if r.conduction else rng.choice([2, 3, 4], size=n_f, p=[0.45, 0.2, 0.35])
    wave_index = np.cumsum(steps) - steps[0] + rng.integers(0, steps[0])
    delay = rng.uniform(0.18, 0.26)
    times = first + wave_index * period + delay
    return times[times < end], first


def _add_pacs(times: np.ndarray, types: np.ndarray, count: int, duration: float, rng: np.random.Generator) -> None:
    for _ in range(count):
        cand = np.flatnonzero((times > 0.4) & (times < duration - 0.8) & (types == "N"))
        cand = cand[(cand > 0) & (cand < len(times) - 1)]
        cand = cand[(types[cand - 1] == "N") & (types[cand + 1] == "N")]
        if cand.size == 0:
            return
        i = rng.choice(cand)
        rr_here, rr_next = times[i] - times[i - 1], times[i + 1] - times[i]
        premature = times[i - 1] + rng.uniform(0.6, 0.78) * rr_here
        times[i + 1 :] += premature + rr_next * rng.uniform(1.0, 1.12) - times[i + 1]
        times[i], types[i] = premature, "A"


def _add_pvcs(times: np.ndarray, types: np.ndarray, count: int, duration: float, rng: np.random.Generator) -> None:
    if count < 0:  # bigeminy: every other beat from a random start
        start = rng.integers(1, 3)
        chosen = np.arange(start, len(times), 2)
    else:
        cand = np.flatnonzero((times > 0.4) & (times < duration - 0.6))
        cand = cand[cand > 0]
        chosen = rng.choice(cand, size=min(count, cand.size), replace=False) if cand.size else cand
    for i in np.sort(chosen):
        if types[i - 1] == "V" or types[i] == "A":
            continue
        times[i] = times[i - 1] + rng.uniform(0.5, 0.7) * (times[i] - times[i - 1])
        types[i] = "V"


def beat_times(r: Rhythm, duration: float, rng: np.random.Generator) -> Beats:
    """Onsets and types of every beat overlapping [0, duration]."""
    end = duration + LEAD_OUT
    phase = 0.0
    if r.kind == "af":
        times, base = _af_times(r, end, rng), "n"
    elif r.kind == "flutter":
        (times, phase), base = _flutter_times(r, end, rng), "n"
    elif r.kind == "svt":
        rr = 60.0 / r.hr
        n = int(np.ceil((end + LEAD_IN) / rr)) + 1
        steps = rr * (1 + rng.normal(0, 0.004, n))
        times, base = -LEAD_IN + rng.uniform(0, rr) + np.cumsum(steps) - steps[0], "n"
        times = times[times < end]
    else:
        times, base = _sinus_times(r, end, rng), "N"
    times = times.copy()
    types = np.full(times.shape, base, dtype="<U1")
    if r.pac and r.kind == "sinus":
        _add_pacs(times, types, r.pac, duration, rng)
    if r.pvc:
        _add_pvcs(times, types, r.pvc, duration, rng)
    keep = times < end
    times, types = times[keep], types[keep]
    rr_prev = np.diff(times, prepend=times[0] - 60.0 / r.hr)
    return Beats(times, types, rr_prev, phase)


def fibrillation(n: int, fs: float, amp: float, rng: np.random.Generator) -> np.ndarray:
    """AF f-waves: 4-9 Hz quasi-periodic activity with wandering rate, amplitude and direction, (n, 3)."""
    t_s = np.arange(n) / fs
    out = np.zeros((n, 3))
    for weight in (1.0, rng.uniform(0.3, 0.6)):
        wander = gaussian_filter1d(rng.normal(0, 1.0, n), fs * 0.3)
        freq = rng.uniform(4.5, 8.0) + 0.6 * wander / (wander.std() + 1e-12)
        phase = 2 * np.pi * np.cumsum(freq) / fs + rng.uniform(0, 2 * np.pi)
        env = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t_s + rng.uniform(0, 2 * np.pi))
        direction = np.array([-0.3, 0.3, -0.9]) + rng.normal(0, 0.3, 3)
        direction /= np.linalg.norm(direction)
        out += weight * amp * (env * np.sin(phase))[:, None] * direction[None, :]
    return out


def flutter_waves(n: int, fs: float, period: float, first: float, amp: float, rng: np.random.Generator) -> np.ndarray:
    """Saw-tooth F waves (slow descent, quick rise in the inferior leads), (n, 3)."""
    x = 2 * np.pi * (np.arange(n) / fs - first) / period
    saw = sum(np.sin(k * x) / k for k in range(1, 6)) / (np.pi / 2)
    direction = np.array([0.1, 1.0, -0.5]) + rng.normal(0, 0.15, 3)
    direction /= np.linalg.norm(direction)
    return amp * saw[:, None] * direction[None, :]
