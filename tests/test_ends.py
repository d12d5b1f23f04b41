"""Rows' trace ends (compiled) against the numpy formulation they replaced."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.ends import row_ends

THRESHOLD = 0.5


def reference(ink: np.ndarray, rows_px: np.ndarray, half: int, min_run: int) -> tuple[np.ndarray, np.ndarray]:
    h, w = ink.shape
    lefts, rights = np.full(rows_px.size, np.nan), np.full(rows_px.size, np.nan)
    for r, y in enumerate(rows_px):
        lo, hi = int(max(0, y - half)), int(min(h, y + half + 1))
        if hi - lo < 2:
            continue
        prof = ink[lo:hi].max(axis=0)
        d = np.diff(np.concatenate(([0], (prof > THRESHOLD).astype(np.int8), [0])))
        starts, ends = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0] - 1
        long = (ends - starts + 1) >= min_run
        if long.any():
            a, b = int(starts[long][0]), int(ends[long][-1])
            pa = prof[a - 1] if a > 0 else 0.0
            pb = prof[b + 1] if b < w - 1 else 0.0
            lefts[r] = a - np.clip((prof[a] - THRESHOLD) / max(prof[a] - pa, 1e-6), 0.0, 1.0)
            rights[r] = b + np.clip((prof[b] - THRESHOLD) / max(prof[b] - pb, 1e-6), 0.0, 1.0)
    return lefts, rights


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_ends_are_numpys_to_the_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ink = (rng.random((90, 120)) ** 3).astype(np.float32)  # specks, short runs
    ink[20:23, 10:100] = rng.uniform(0.55, 1.0, (3, 90))  # a row's trace
    ink[50:52, :] = 0.9  # one that runs off both edges
    rows = np.array([-10.0, 3.2, 21.4, 51.0, 88.7, 95.0])  # above, at and below the image too
    for half, min_run in ((3, 6), (1, 2), (6, 30)):
        got, want = row_ends(ink, rows, half, min_run, THRESHOLD), reference(ink, rows, half, min_run)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    clean = np.zeros((20, 50), np.float32)
    clean[9:11] = 0.9
    left, right = row_ends(clean, np.array([10.0]), 2, 5, THRESHOLD)
    # a run cut by the image's edges: beyond them the ink counts as 0, so the ends sit where 0.9 would fall to 0.5
    assert left[0] == pytest.approx(-0.4 / 0.9, rel=1e-6) and right[0] == pytest.approx(49 + 0.4 / 0.9, rel=1e-6)
