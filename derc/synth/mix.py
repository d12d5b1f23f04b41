"""PTB-XL-like label combinations."""

from __future__ import annotations

import numpy as np

from derc.labels import LABELS

#: P(superclass | record has a diagnostic abnormality), as independent draws conditioned on >= 1.
_ABNORMAL_Q = {"MI": 0.312, "STTC": 0.298, "CD": 0.274, "HYP": 0.149}
_P_NORMAL_MORPH = 0.45
_P_ACUTE_GIVEN_MI = 0.4


def _natural(rng: np.random.Generator) -> list[str]:
    labels: list[str] = []
    normal = rng.random() < _P_NORMAL_MORPH
    if normal:
        labels.append("NORM")
    else:
        while not labels:
            labels = [name for name, q in _ABNORMAL_Q.items() if rng.random() < q]
        if "MI" in labels:
            labels.remove("MI")
            labels.append("Acute MI" if rng.random() < _P_ACUTE_GIVEN_MI else "Old MI")
            if rng.random() < 0.04:
                labels.append("Old MI" if "Acute MI" in labels else "Acute MI")
        if "HYP" in labels and "STTC" not in labels and rng.random() < 0.2:
            labels.append("STTC")
    afib = rng.random() < (0.025 if normal else 0.112)
    if afib:
        labels.append("AFIB/AFL")
        if normal:
            labels.remove("NORM")  # a "normal ECG" statement implies sinus rhythm
    else:
        u = rng.random()
        if u < 0.043:
            labels.append("TACHY")
        elif u < 0.043 + 0.032:
            labels.append("BRADY")
        if rng.random() < 0.0215:
            labels.append("PAC")
    if rng.random() < 0.05:
        labels.append("PVC")
    return sorted(labels, key=LABELS.index)


def sample_labels(rng: np.random.Generator, *, balanced: bool = False) -> list[str]:
    """A PTB-XL-like label set in LABELS order; ``balanced`` draws each of the 11 labels equally often as focus."""
    if not balanced:
        return _natural(rng)
    focus = LABELS[int(rng.integers(len(LABELS)))]
    for _ in range(5000):
        labels = _natural(rng)
        if focus in labels:
            return labels
    return _natural(rng)
