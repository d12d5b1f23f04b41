"""Ink runs along an axis (the tracer's compiled helper) against a plain loop over every line."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.runs import band_run_lengths, plateau_middle, run_at, run_ends, stroke_mass


def reference(line: np.ndarray) -> tuple[list[int], list[int]]:
    """First and last index of each pixel's run of set pixels; index + 1 / index - 1 off the ink."""
    n = len(line)
    start, end = [], []
    for i in range(n):
        if not line[i]:
            start.append(i + 1)
            end.append(i - 1)
            continue
        a = i
        while a > 0 and line[a - 1]:
            a -= 1
        b = i
        while b < n - 1 and line[b + 1]:
            b += 1
        start.append(a)
        end.append(b)
    return start, end


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_run_ends_match_a_plain_loop(axis: int) -> None:
    mask = np.random.default_rng(axis).random((7, 3, 9)) > 0.45
    start, end = run_ends(mask, axis)
    assert start.shape == end.shape == mask.shape and start.dtype == end.dtype == np.int32
    lines_mask = np.moveaxis(mask, axis, -1).reshape(-1, mask.shape[axis])
    lines_start = np.moveaxis(start, axis, -1).reshape(-1, mask.shape[axis])
    lines_end = np.moveaxis(end, axis, -1).reshape(-1, mask.shape[axis])
    for line, s, e in zip(lines_mask, lines_start, lines_end, strict=True):
        want_s, want_e = reference(line)
        assert s.tolist() == want_s and e.tolist() == want_e


def test_run_ends_of_full_empty_and_zero_length_lines() -> None:
    start, end = run_ends(np.array([[True, True, True], [False, False, False]]), axis=1)
    assert start.tolist() == [[0, 0, 0], [1, 2, 3]] and end.tolist() == [[2, 2, 2], [-1, 0, 1]]
    start, end = run_ends(np.zeros((0, 4), dtype=bool), axis=0)
    assert start.shape == end.shape == (0, 4)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_run_at_reads_run_ends_at_one_index_per_line(axis: int) -> None:
    rng = np.random.default_rng(10 + axis)
    mask = rng.random((6, 4, 11)) > 0.4
    index = rng.integers(0, mask.shape[axis], size=np.delete(mask.shape, axis))
    start, end = run_ends(mask, axis)
    at_start, at_end = run_at(mask, index, axis)
    expand = np.expand_dims(index, axis)
    assert at_start.dtype == at_end.dtype == np.int32 and at_start.shape == index.shape
    assert np.array_equal(at_start, np.take_along_axis(start, expand, axis).squeeze(axis))
    assert np.array_equal(at_end, np.take_along_axis(end, expand, axis).squeeze(axis))


def test_run_at_checks_its_index() -> None:
    mask = np.ones((3, 5), dtype=bool)
    assert run_at(mask, np.array([0, 4, 2]), axis=1)[1].tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="index shaped"):
        run_at(mask, np.zeros(5, np.int64), axis=1)
    with pytest.raises(IndexError):
        run_at(mask, np.array([0, 5, 2]), axis=1)
    assert run_at(np.zeros((0, 4), bool), np.zeros(0, np.int64), axis=1)[0].shape == (0,)


def plateau_reference(flag: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The middle (the earlier of two) of each stretch of consecutive flagged entries with one value, per column."""
    out = np.zeros_like(flag)
    for j in range(flag.shape[1]):
        i = 0
        while i < flag.shape[0]:
            if not flag[i, j]:
                i += 1
                continue
            last = i
            while last + 1 < flag.shape[0] and flag[last + 1, j] and value[last + 1, j] == value[i, j]:
                last += 1
            out[i + (last - i) // 2, j] = True
            i = last + 1
    return out


def test_plateau_middle_keeps_each_plateaus_middle() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        shape = (int(rng.integers(0, 25)), int(rng.integers(1, 5)))
        flag = rng.random(shape) > rng.random()
        value = rng.integers(0, 3, size=shape).astype(np.int32)
        assert np.array_equal(plateau_middle(flag, value), plateau_reference(flag, value))
    flag = np.array([[True], [True], [True], [True], [False], [True]])
    value = np.array([[4], [4], [4], [5], [5], [5]])
    assert np.flatnonzero(plateau_middle(flag, value)).tolist() == [1, 3, 5]
    with pytest.raises(ValueError, match="flags and values"):
        plateau_middle(flag, value[:3])


def test_stroke_mass_sums_the_darkest_pixels_run_as_numpy_does() -> None:
    rng = np.random.default_rng(8)
    floor = 0.1
    for _ in range(50):
        band = rng.random((int(rng.integers(2, 20)), 30)).astype(np.float32) ** 3
        band[rng.random(band.shape) < 0.1] = np.float32(floor)  # exactly at the floor (float32): not above it
        a, b = run_at(band > floor, band.argmax(axis=0), axis=0)
        rows = np.arange(band.shape[0])[:, None]
        want = np.where((rows >= a) & (rows <= b), band, 0.0).sum(axis=0)
        got = stroke_mass(band, floor)
        assert got.dtype == np.float32 and np.array_equal(got, want)
    assert stroke_mass(np.full((3, 2), 0.05, np.float32), floor).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="float32 band"):
        stroke_mass(np.zeros((3, 2)), floor)


def test_band_run_lengths_are_the_runs_of_each_band_and_column() -> None:
    rng = np.random.default_rng(3)
    image = rng.random((40, 30)).astype(np.float32)
    bands = np.array([[0, 7], [5, 18], [30, 40], [12, 12]])  # overlapping, at the bottom edge, empty
    cols = np.array([0, 3, 3, 29])  # a column twice counts twice
    want = []
    for lo, hi in bands:
        m = image[lo:hi, cols] > 0.5
        start, end = run_ends(m, axis=0)
        first = m & (start == np.arange(hi - lo)[:, None])
        want += ((end - start + 1)[first]).tolist()
    assert sorted(band_run_lengths(image, bands, cols, 0.5).tolist()) == sorted(want)
    assert band_run_lengths(image, np.zeros((0, 2)), cols, 0.5).size == 0
    with pytest.raises(ValueError, match="rows"):
        band_run_lengths(image, np.array([[30, 41]]), cols, 0.5)
    with pytest.raises(ValueError, match="columns"):
        band_run_lengths(image, bands, np.array([30]), 0.5)
