"""Limb leads from the limb leads shown at the same time (Einthoven/Goldberger).

The six limb leads are linear in two of them: III = II - I, aVR = -(I + II)/2, aVL = I - II/2 and
aVF = II - I/2, exactly so in recorded 12-lead ECGs, where the device derives four of the six. Where a
printout shows two or more limb leads that are not multiples of one another at a time (e.g. aVR, aVL and aVF
beside the lead II rhythm strip in the second column of a 3x4 page), all six are known there: the least-squares
(I, II) of the shown ones gives the rest. Where five or six are shown at once (6x2, 12x1), the shown ones are
also replaced by that fit: four redundant tracings average out each one's tracing error (a QRS cut where it
crossed the next row, a pen's wobble): +0.3-0.5 dB on the noisy benchmark pages of those layouts, +0.1-0.3 dB
on clean ones. With three or four (3x4) the fit did not beat the tracings, so they are kept as traced.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

# coefficients of each limb lead on (I, II)
LIMB_COEFFICIENTS: dict[str, tuple[float, float]] = {
    "i": (1.0, 0.0),
    "ii": (0.0, 1.0),
    "iii": (-1.0, 1.0),
    "avr": (-0.5, -0.5),
    "avl": (1.0, -0.5),
    "avf": (-0.5, 1.0),
}
# shown limb leads are replaced by their least-squares fit where at least this many are shown at a sample
RECONCILE_MIN_SHOWN = 5


def _limb_columns(leads: Sequence[str]) -> tuple[list[int], np.ndarray]:
    """The columns of ``leads`` that are limb leads and their (I, II) coefficients (rows)."""
    names = [str(n).strip().lower() for n in leads]
    cols = [j for j, n in enumerate(names) if n in LIMB_COEFFICIENTS]
    return cols, np.array([LIMB_COEFFICIENTS[names[j]] for j in cols]).reshape(-1, 2)


def _shown_groups(finite: np.ndarray, coef: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(samples, shown) per pattern of shown limb leads whose coefficients have rank 2 (a page has a handful):
    ``samples`` share the boolean mask ``shown`` over the limb columns."""
    pattern = finite @ (1 << np.arange(finite.shape[1]))
    for key in np.unique(pattern):
        rows = np.flatnonzero(pattern == key)
        shown = finite[rows[0]]
        if shown.sum() >= 2 and np.linalg.matrix_rank(coef[shown]) == 2:
            yield rows, shown


def _least_squares(coef: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The least-squares (I, II) of every column of ``values`` (shown leads x samples) on ``coef`` (shown leads x 2,
    rank 2): the pseudo-inverse of the small coefficient matrix, once, times the samples. ``np.linalg.lstsq`` solves
    the same problem (to within 2e-15 mV) but as one right-hand side per sample: 0.32-0.35 ms for a 6x2 or 12x1
    page's 2,500-5,000 samples on one BLAS thread against the pseudo-inverse's 0.06 ms, and 10-17 ms where
    OpenBLAS's threads wait for cores a training job holds."""
    return np.linalg.pinv(coef) @ values


def complete_limb_leads(signal: np.ndarray, leads: Sequence[str], *, reconcile: bool = True) -> np.ndarray:
    """A copy of ``signal`` (samples x leads) whose limb leads are made consistent where possible.

    At each sample the finite limb leads (named case-insensitively in ``leads``) are solved for (I, II) by least
    squares when their coefficients have rank 2; the NaN limb leads of that sample get their combination, and
    with ``reconcile`` so do the shown ones where RECONCILE_MIN_SHOWN or more are finite. Samples where fewer
    than two independent limb leads are finite stay NaN.
    """
    out = np.array(signal, dtype=np.float32, copy=True)
    cols, coef = _limb_columns(leads)
    if len(cols) < 3 or out.shape[0] == 0:
        return out
    limb = out[:, cols].astype(np.float64)
    finite = np.isfinite(limb)
    count = finite.sum(axis=1)
    refit = (~finite & (count >= 2)[:, None]) | (finite & (count >= RECONCILE_MIN_SHOWN)[:, None] & reconcile)
    if not refit.any():
        return out
    for rows, shown in _shown_groups(finite, coef):
        target = np.flatnonzero(refit[rows[0]])
        if target.size == 0:
            continue
        basis = _least_squares(coef[shown], limb[np.ix_(rows, np.flatnonzero(shown))].T)  # (2, n)
        limb[np.ix_(rows, target)] = (coef[target] @ basis).T
    out[:, cols] = np.where(refit, limb, out[:, cols]).astype(np.float32)
    return out


def limb_consistency(signal: np.ndarray, leads: Sequence[str]) -> float:
    """How well the limb leads read at the same time obey Einthoven's and Goldberger's laws: 1 minus the share of
    their energy (mV², each panel relative to its own baseline) that no (I, II) explains, over the samples
    where three or more limb leads are shown; NaN where no sample shows three.

    A page read the right way up scores near 1 (its limb leads are one heart vector seen from six angles); read
    upside down, the panels where the limb leads should be hold other leads, turned over and reversed in
    time, which obey no such law (the orientation check of :func:`derc.digitize.upright.read_upright`).
    """
    cols, coef = _limb_columns(leads)
    if len(cols) < 3 or np.shape(signal)[0] == 0:
        return float("nan")
    limb = np.asarray(signal, dtype=np.float64)[:, cols]
    finite = np.isfinite(limb)
    unexplained = total = 0.0
    for rows, shown in _shown_groups(finite, coef):
        if shown.sum() < 3:
            continue  # two leads are always explained
        values = limb[np.ix_(rows, np.flatnonzero(shown))].T
        basis = _least_squares(coef[shown], values)
        unexplained += float(np.square(coef[shown] @ basis - values).sum())
        total += float(np.square(values).sum())
    return 1.0 - unexplained / total if total > 0 else float("nan")
