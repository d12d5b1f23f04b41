"""The 11 diagnostic labels and the 12 standard leads, in the Challenge's order."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

LABELS: tuple[str, ...] = (
    "NORM",
    "Acute MI",
    "Old MI",
    "STTC",
    "CD",
    "HYP",
    "PAC",
    "PVC",
    "AFIB/AFL",
    "TACHY",
    "BRADY",
)
NUM_LABELS = len(LABELS)

LEADS: tuple[str, ...] = (
    "I",
    "II",
    "III",
    "aVR",
    "aVL",
    "aVF",
    "V1",
    "V2",
    "V3",
    "V4",
    "V5",
    "V6",
)

_CANONICAL = {re.sub(r"\s+", "", name).lower(): name for name in LABELS}


def canonical_label(name: str) -> str | None:
    """Return the canonical spelling of ``name`` (case and spacing ignored), or None if unknown."""
    return _CANONICAL.get(re.sub(r"\s+", "", str(name)).lower())


def encode(labels: Iterable[str], *, record: str = "", warn: bool = True) -> np.ndarray:
    """Multi-hot float32 vector over :data:`LABELS`; unknown labels are warned about and ignored."""
    vector = np.zeros(NUM_LABELS, dtype=np.float32)
    for name in labels:
        canonical = canonical_label(name)
        if canonical is None:
            if warn and str(name).strip():
                where = f" in record {record!r}" if record else ""
                warnings.warn(f"unknown label {name!r}{where} ignored", stacklevel=2)
            continue
        vector[LABELS.index(canonical)] = 1.0
    return vector


def decode(vector: Sequence[float] | np.ndarray, threshold: float | Sequence[float] = 0.5) -> list[str]:
    """Label names whose score is at or above the (per-label) threshold."""
    scores = np.asarray(vector, dtype=np.float64).reshape(-1)
    if scores.size != NUM_LABELS:
        raise ValueError(f"expected {NUM_LABELS} scores, got {scores.size}")
    cut = np.broadcast_to(np.asarray(threshold, dtype=np.float64), scores.shape)
    return [name for name, s, t in zip(LABELS, scores, cut, strict=True) if s >= t]
