"""Heart vector (Frank X left, Y down, Z back) -> 12 leads through the Dower transform."""

from __future__ import annotations

import numpy as np

from derc.labels import LEADS

#: Dower (1980) coefficients for I, II, V1..V6 (rows) on X, Y, Z (columns).
DOWER = np.array(
    [
        [0.632, -0.235, 0.059],
        [0.235, 1.066, -0.132],
        [-0.515, 0.157, -0.917],
        [0.044, 0.164, -1.387],
        [0.882, 0.098, -1.277],
        [1.213, 0.127, -0.601],
        [1.125, 0.127, -0.086],
        [0.831, 0.076, 0.230],
    ]
)
#: Names of the independent (electrode-level) leads, in DOWER row order.
INDEPENDENT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
LEAD_INDEX = {name: i for i, name in enumerate(LEADS)}


def project(vcg: np.ndarray, dower: np.ndarray = DOWER) -> np.ndarray:
    """Heart vector (..., 3) -> independent leads (..., 8) in mV."""
    return vcg @ dower.T


def derive_leads(independent: np.ndarray) -> np.ndarray:
    """(..., 8) I, II, V1..V6 -> (..., 12) in LEADS order; III, aVR, aVL, aVF derived exactly."""
    lead_i, lead_ii = independent[..., 0], independent[..., 1]
    limb = np.stack(
        [lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2],
        axis=-1,
    )
    return np.concatenate([limb, independent[..., 2:]], axis=-1)


def vector_to_leads(vec: np.ndarray, dower: np.ndarray = DOWER) -> np.ndarray:
    """Static vector(s) (..., 3) -> value in each of the 12 leads (..., 12)."""
    return derive_leads(project(np.asarray(vec, dtype=float), dower))


def perturbed_dower(rng: np.random.Generator, spread: float = 0.06) -> np.ndarray:
    """Per-record lead matrix: electrode placement and torso shape make each person's projection differ."""
    return DOWER * (1 + rng.normal(0, spread, DOWER.shape)) + rng.normal(0, spread / 2, DOWER.shape)


def frontal_direction(axis_deg: float) -> np.ndarray:
    """Unit (X, Y) whose projection on (I, aVF) points at the given hexaxial frontal axis."""
    lead_i = DOWER[0, :2]
    avf = DOWER[1, :2] - DOWER[0, :2] / 2
    target = np.array([np.cos(np.radians(axis_deg)), np.sin(np.radians(axis_deg))])
    xy = np.linalg.solve(np.stack([lead_i, avf]), target)
    return xy / np.linalg.norm(xy)


def rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (B, 3, 3) about unit axes (B, 3) by angles (B,) in radians (Rodrigues)."""
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = np.zeros_like(x)
    k = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], 1)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3)[None] + s * k + (1 - c) * (k @ k)
