"""The tracer's dynamic programme finds the cheapest path (checked against an exhaustive O(N K^2) search)."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.viterbi import cheapest_paths, claims_near, path_costs


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


def test_claimed_pixels_cost_as_an_added_float64_penalty() -> None:
    """``claimed``/``claim_cost`` give the paths of ``unary + claim_cost * claimed`` summed in float64, without
    that array: the same path on random costs, ties included (costs on a coarse lattice)."""
    rng = np.random.default_rng(1)
    for _ in range(20):
        n, r, k = (int(v) for v in rng.integers((1, 1, 2), (50, 5, 25)))
        unary = (rng.integers(0, 8, (n, r, k)) / 8).astype(np.float32)
        step = (rng.integers(0, 4, (n, r, k)) / 16).astype(np.float32)
        resets = rng.random((n, r)) < 0.1
        claimed = rng.random((n, r, k)) < 0.3
        expected = cheapest_paths(unary + 0.6 * claimed, step, resets)
        assert np.array_equal(cheapest_paths(unary, step, resets, claimed=claimed, claim_cost=0.6), expected)
    with pytest.raises(ValueError, match="claims"):
        cheapest_paths(unary, step, resets, claimed=claimed[:, :, :-1], claim_cost=0.6)


def test_path_costs_match_their_definition() -> None:
    """The compiled costs equal the float32 formulas they stand for, bit for bit."""
    rng = np.random.default_rng(2)
    win = rng.random((40, 3, 17), dtype=np.float32)
    win[rng.random(win.shape) < 0.3] = 0.0
    win[rng.random(win.shape) < 0.1] = 1.0
    band = (0.3 * rng.random(17)).astype(np.float32)
    unary, step = path_costs(win, band)
    assert np.array_equal(unary, (1.0 - np.clip(win / 0.5, 0.0, 1.0)) + band)
    both = np.maximum(win, np.concatenate([win[:1], win[:-1]], axis=0))
    s = 0.01 + 1.0 - np.clip(both / 0.3, 0.0, 1.0)
    assert s.dtype == np.float32
    expected = np.concatenate([np.minimum(s[:, :, :-1], s[:, :, 1:]), np.zeros((40, 3, 1), np.float32)], axis=2)
    assert np.array_equal(step, expected)
    with pytest.raises(ValueError, match="expected"):
        path_costs(win, band[:-1])


def test_claims_near_marks_the_other_rows_paths_within_reach() -> None:
    rng = np.random.default_rng(3)
    n, r, k, reach = 9, 3, 12, 2
    pos = rng.integers(-4, k + 4, size=(n, r, r))
    keep = (rng.random((n, r, r)) > 0.3) & ~np.eye(r, dtype=bool)[None]
    want = np.zeros((n, r, k), dtype=bool)
    for i, other, row in zip(*np.nonzero(keep), strict=True):
        for y in range(pos[i, other, row] - reach, pos[i, other, row] + reach + 1):
            if 0 <= y < k:
                want[i, row, y] = True
    assert np.array_equal(claims_near(pos, keep, reach, k), want)
    with pytest.raises(ValueError, match="positions"):
        claims_near(pos[:, :2], keep[:, :2], reach, k)


@pytest.mark.parametrize("claimed", [False, True])
def test_rows_traced_in_pairs_are_traced_as_if_alone(claimed: bool) -> None:
    """The kernel runs two rows' sweeps side by side (an odd last row in both lanes): each row's path, ties
    included, is the one it gets traced on its own."""
    rng = np.random.default_rng(7)
    n, r, k = 40, 5, 12
    unary = np.round(rng.random((n, r, k)), 1).astype(np.float32)  # coarse values: many ties
    step = np.round(rng.random((n, r, k)), 1).astype(np.float32)
    resets = rng.random((n, r)) < 0.15  # resets in one row of a pair and not the other
    claims = rng.random((n, r, k)) < 0.2 if claimed else None
    together = cheapest_paths(unary, step, resets, claimed=claims, claim_cost=0.6)
    for row in range(r):
        alone = cheapest_paths(
            unary[:, row : row + 1],
            step[:, row : row + 1],
            resets[:, row : row + 1],
            claimed=None if claims is None else claims[:, row : row + 1],
            claim_cost=0.6,
        )
        assert np.array_equal(together[:, row], alone[:, 0])
