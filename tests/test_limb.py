"""Limb-lead identities: unshown limb-lead samples derived from the limb leads shown at the same time, and six
shown tracings reconciled."""

from __future__ import annotations

import numpy as np
import pytest

from derc.digitize.evaluation import shown_mask
from derc.digitize.limb import complete_limb_leads
from derc.labels import LEADS
from derc.synth import sample_labels, synthesize

FS = 500.0


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    rng = np.random.default_rng(21)
    return synthesize(sample_labels(rng), rng=rng, fs=int(FS)).astype(np.float64)


def test_3x4_limb_leads_derived_exactly(signal: np.ndarray) -> None:
    shown = shown_mask("3x4", signal.shape[0], FS)
    out = complete_limb_leads(np.where(shown, signal, np.nan), LEADS)
    np.testing.assert_array_equal(out[shown], signal[shown].astype(np.float32))  # shown samples untouched
    n = int(5.0 * FS)
    # first 5 s: every limb lead known (I, II, III shown in 0-2.5 s; aVR, aVL, aVF and the rhythm strip after)
    np.testing.assert_allclose(out[:n, :6], signal[:n, :6], atol=1e-5)
    assert np.isnan(out[n:, [0, 2, 3, 4, 5]]).all()  # after 5 s only lead II is shown: nothing to derive
    assert np.isnan(out[:, 6:][~shown[:, 6:]]).all()  # chest leads stay NaN


def test_noisy_estimates_average_and_single_leads_stay_nan(signal: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    noisy = signal + rng.normal(0, 0.02, signal.shape)
    est = np.full_like(signal, np.nan)
    est[:100, [3, 4, 5, 1]] = noisy[:100, [3, 4, 5, 1]]  # aVR, aVL, aVF and II: I and III by least squares
    est[100:200, 1] = noisy[100:200, 1]  # II alone: rank 1
    est[200:300, [1, 5]] = noisy[200:300, [1, 5]]  # II and aVF: rank 2, exact solve
    out = complete_limb_leads(est, [name.upper() for name in LEADS])
    err = out[:100, [0, 2]] - signal[:100, [0, 2]]
    assert np.sqrt(np.mean(err**2)) < 0.03  # least squares over 4 noisy leads: near their own noise
    assert np.isnan(out[100:200, [0, 2, 3, 4, 5]]).all()
    np.testing.assert_allclose(out[200:300, 0], 2 * (noisy[200:300, 1] - noisy[200:300, 5]), atol=1e-5)


def test_without_limb_leads_nothing_changes() -> None:
    data = np.full((10, 3), np.nan)
    data[:, 0] = 1.0
    np.testing.assert_array_equal(complete_limb_leads(data, ["I", "V1", "X"]), data.astype(np.float32))


def test_six_shown_tracings_are_reconciled(signal: np.ndarray) -> None:
    """6x2/12x1 show all six limb leads at once: their least-squares fit beats each tracing, and a QRS cut in one
    row (a tracing error) is mostly restored from the other five; chest leads are left alone."""
    rng = np.random.default_rng(1)
    est = signal + rng.normal(0, 0.03, signal.shape)
    est[825:845, 2] = 0.0  # lead III's -2.7 mV QRS lost where it crossed the next row
    out = complete_limb_leads(est, LEADS)
    before = np.sqrt(np.mean((est[:, :6] - signal[:, :6]) ** 2))
    after = np.sqrt(np.mean((out[:, :6] - signal[:, :6]) ** 2))
    assert after < 0.8 * before, (before, after)
    cut = signal[825:845, 2]
    # one lead's error keeps 38 % of itself in the fit (III's leverage among the six)
    assert np.abs(out[825:845, 2] - cut).max() < 0.45 * np.abs(cut).max(), np.abs(cut).max()
    np.testing.assert_array_equal(out[:, 6:], est[:, 6:].astype(np.float32))
    kept = complete_limb_leads(est, LEADS, reconcile=False)
    np.testing.assert_array_equal(kept, est.astype(np.float32))  # nothing missing: nothing to derive


def test_consistency_of_true_limb_leads_is_one_and_of_other_leads_is_not(signal: np.ndarray) -> None:
    from derc.digitize.limb import limb_consistency

    for layout in ("3x4", "6x2", "12x1"):
        shown = np.where(shown_mask(layout, signal.shape[0], FS), signal, np.nan)
        assert limb_consistency(shown, LEADS) == pytest.approx(1.0, abs=1e-6), layout
        # the panels of a page read upside down: each lead's panel holds another lead, inverted
        swapped = -shown[::-1, ::-1]
        assert limb_consistency(swapped, LEADS) < 0.8, layout


def test_consistency_needs_three_limb_leads_at_once(signal: np.ndarray) -> None:
    from derc.digitize.limb import limb_consistency

    two = np.full_like(signal, np.nan)
    two[:, [0, 1]] = signal[:, [0, 1]]  # two leads are always explained: no evidence
    assert np.isnan(limb_consistency(two, LEADS))
    assert np.isnan(limb_consistency(signal[:, 6:], LEADS[6:]))  # no limb leads at all
    assert np.isnan(limb_consistency(signal[:0], LEADS))
