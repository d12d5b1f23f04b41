"""Wave components of one beat and their evaluation into a heart-vector time series.

A beat is a set of K components, each a (possibly asymmetric, possibly flat-topped) Gaussian bump
in time carrying a fixed 3-D heart vector. Times are seconds relative to the QRS onset.
Repolarisation components (ST, T) stretch with the beat's QT about the J point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Beat window (seconds around QRS onset) over which components are evaluated.
WINDOW = (-0.6, 1.0)


@dataclass
class Comp:
    """One wave component: centre/widths in s, half-length of the flat top, vector in mV."""

    center: float
    sig_l: float
    sig_r: float
    vec: np.ndarray
    flat: float = 0.0
    repol: bool = False
    kind: str = ""


@dataclass
class Template:
    """Components of one beat type plus its QRS duration (the J point, pivot of QT stretching)."""

    comps: list[Comp] = field(default_factory=list)
    qrs: float = 0.09

    def find(self, kind: str) -> list[Comp]:
        return [c for c in self.comps if c.kind == kind]


def gauss(center: float, sigma: float, vec: Sequence[float], kind: str, repol: bool = False) -> Comp:
    return Comp(center, sigma, sigma, np.asarray(vec, dtype=float), 0.0, repol, kind)


def stack_templates(templates: Mapping[str, Template]) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """Pad every template to the same K and stack them: arrays indexed [type, k]."""
    names = list(templates)
    k_max = max(1, *(len(t.comps) for t in templates.values()))
    arr = {
        "center": np.zeros((len(names), k_max)),
        "sig_l": np.ones((len(names), k_max)),
        "sig_r": np.ones((len(names), k_max)),
        "flat": np.zeros((len(names), k_max)),
        "vec": np.zeros((len(names), k_max, 3)),
        "repol": np.zeros((len(names), k_max), dtype=bool),
        "pivot": np.zeros((len(names), k_max)),
    }
    for i, name in enumerate(names):
        tpl = templates[name]
        for k, c in enumerate(tpl.comps):
            arr["center"][i, k], arr["sig_l"][i, k], arr["sig_r"][i, k] = c.center, c.sig_l, c.sig_r
            arr["flat"][i, k], arr["vec"][i, k], arr["repol"][i, k] = c.flat, c.vec, c.repol
            arr["pivot"][i, k] = tpl.qrs
    return {n: i for i, n in enumerate(names)}, arr


def shape(t: np.ndarray, center: np.ndarray, sig_l: np.ndarray, sig_r: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Asymmetric flat-topped Gaussian evaluated at t (broadcasting)."""
    d = t - center
    left = np.minimum(d + flat, 0.0) / sig_l
    right = np.maximum(d - flat, 0.0) / sig_r
    return np.exp(-0.5 * (left * left + right * right))


def render(beats: Mapping[str, np.ndarray], onsets: np.ndarray, n: int, fs: float) -> np.ndarray:
    """Overlap-add the beats (arrays shaped (B, K[, 3])) at QRS onsets (s) into an (n, 3) heart vector."""
    out = np.zeros((n, 3))
    if len(onsets) == 0:
        return out
    w0, w1 = round(WINDOW[0] * fs), round(WINDOW[1] * fs)
    start = np.floor(onsets * fs).astype(int) + w0
    idx = start[:, None] + np.arange(w1 - w0)[None, :]  # (B, W)
    t = idx / fs - onsets[:, None]
    wave = shape(
        t[:, None, :],
        beats["center"][:, :, None],
        beats["sig_l"][:, :, None],
        beats["sig_r"][:, :, None],
        beats["flat"][:, :, None],
    )  # (B, K, W)
    vals = np.einsum("bkw,bkc->bwc", wave, beats["vec"])
    ok = (idx >= 0) & (idx < n)
    flat_idx = idx[ok]
    for c in range(3):
        out[:, c] = np.bincount(flat_idx, weights=vals[..., c][ok], minlength=n)
    return out
