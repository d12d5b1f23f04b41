"""The compiled projection-profile sharpness (the rotation search's score) against numpy's bincount."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.skew import profile_sharpness


def reference(ys: np.ndarray, xc: np.ndarray, w: np.ndarray, angles: np.ndarray, h: int) -> np.ndarray:
    out = []
    for a in angles:
        yy = np.clip(ys - xc * np.tan(np.deg2rad(a)) + h, 0, 3 * h - 2)
        base = np.floor(yy).astype(np.int64)
        frac = yy - base
        hist = np.bincount(base, weights=w * (1 - frac), minlength=3 * h)
        hist += np.bincount(base + 1, weights=w * frac, minlength=3 * h)
        out.append(float(np.dot(hist, hist)))
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1])
def test_sharpness_matches_bincount(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, width = 60, 90
    ys = rng.integers(0, h, 500)
    xc = rng.integers(0, width, 500) - width / 2.0
    w = rng.random(500)
    angles = np.arange(-40.0, 40.0, 2.5)  # steep enough that some pixels clip at both ends of the histogram
    np.testing.assert_allclose(profile_sharpness(ys, xc, w, angles, h), reference(ys, xc, w, angles, h), rtol=1e-12)


def test_sharpness_peaks_where_the_lines_are_level() -> None:
    xs = np.arange(-100, 100, dtype=np.float64)
    tilt = np.tan(np.deg2rad(1.5))
    ys = np.concatenate([20 + xs * tilt, 50 + xs * tilt])  # two lines running down to the right by 1.5 degrees
    xc, w = np.concatenate([xs, xs]), np.ones(2 * xs.size)
    angles = np.arange(-5.0, 5.0 + 1e-9, 0.25)
    assert angles[np.argmax(profile_sharpness(ys, xc, w, angles, 80))] == pytest.approx(1.5)
