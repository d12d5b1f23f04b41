"""The tracer's dynamic programme finds the cheapest path (checked against an exhaustive O(N K^2) search)."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.viterbi import cheapest_paths


def path_cost(unary: np.ndarray, step: np.ndarray, resets: np.ndarray, path: np.ndarray, row: int) -> float:
    """Unary costs along ``path`` plus the vertical moves' step costs (free at resets)."""
    total = float(unary[0, row, path[0]])
    for i in range(1, len(path)):
        a, b = sorted((int(path[i - 1]), int(path[i])))
        total += float(unary[i, row, path[i]]) + (0.0 if resets[i, row] else float(step[i, row, a:b].sum()))
    return total


def optimal_cost(unary: np.ndarray, step: np.ndarray, resets: np.ndarray, row: int) -> float:
    n, _, k = unary.shape
    d = unary[0, row].astype(np.float64)
    for i in range(1, n):
        cum = np.concatenate([[0.0], np.cumsum(step[i, row, :-1], dtype=np.float64)])
        move = np.zeros((k, k)) if resets[i, row] else np.abs(cum[:, None] - cum[None, :])
        d = unary[i, row] + (d[None, :] + move).min(axis=1)
    return float(d.min())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_paths_are_optimal(dtype: type) -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        n, r, k = (int(v) for v in rng.integers((1, 1, 1), (60, 5, 30)))
        unary = rng.random((n, r, k)).astype(dtype)
        step = rng.random((n, r, k)).astype(np.float32)
        resets = rng.random((n, r)) < 0.1
        path = cheapest_paths(unary, step, resets)
        assert path.shape == (n, r) and path.dtype == np.int32
        assert ((path >= 0) & (path < k)).all()
        for row in range(r):
            got = path_cost(unary, step, resets, path[:, row], row)
            assert got == pytest.approx(optimal_cost(unary, step, resets, row), rel=1e-5, abs=1e-5)


def test_path_follows_a_vertical_stroke_and_jumps_at_a_reset() -> None:
    n, k = 6, 10
    unary = np.ones((n, 1, k), np.float32)
    for i, y in enumerate([2, 2, 8, 8, 1, 1]):
        unary[i, 0, y] = 0.0
    step = np.full((n, 1, k), 0.4, np.float32)
    step[2, 0, 2:8] = 0.0  # ink joins rows 2..8 in column 2 (a steep stroke)
    resets = np.zeros((n, 1), bool)
    resets[4, 0] = True  # a new panel starts at column 4
    assert cheapest_paths(unary, step, resets)[:, 0].tolist() == [2, 2, 8, 8, 1, 1]


def test_shape_errors_are_reported() -> None:
    with pytest.raises(ValueError, match="expected"):
        cheapest_paths(np.zeros((3, 2, 4)), np.zeros((3, 2, 5)), np.zeros((3, 2), bool))
    assert cheapest_paths(np.zeros((0, 2, 4)), np.zeros((0, 2, 4)), np.zeros((0, 2), bool)).shape == (0, 2)
