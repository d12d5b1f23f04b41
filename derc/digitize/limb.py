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

from collections.abc import Sequence

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


def complete_limb_leads(signal: np.ndarray, leads: Sequence[str], *, reconcile: bool = True) -> np.ndarray:
    """A copy of ``signal`` (samples x leads) whose limb leads are made consistent where possible.

    At each sample the finite limb leads (named case-insensitively in ``leads``) are solved for (I, II) by least
    squares when their coefficients have rank 2; the NaN limb leads of that sample get their combination, and
    with ``reconcile`` so do the shown ones where RECONCILE_MIN_SHOWN or more are finite. Samples where fewer
    than two independent limb leads are finite stay NaN.
    """
    out = np.array(signal, dtype=np.float32, copy=True)
    names = [str(n).strip().lower() for n in leads]
    cols = [j for j, n in enumerate(names) if n in LIMB_COEFFICIENTS]
    if len(cols) < 3 or out.shape[0] == 0:
        return out
    coef = np.array([LIMB_COEFFICIENTS[names[j]] for j in cols])  # (L, 2)
    limb = out[:, cols].astype(np.float64)
    finite = np.isfinite(limb)
    count = finite.sum(axis=1)
    refit = (~finite & (count >= 2)[:, None]) | (finite & (count >= RECONCILE_MIN_SHOWN)[:, None] & reconcile)
    if not refit.any():
        return out
    # samples sharing a pattern of shown leads share one solve (a page has a handful of patterns)
    pattern = finite @ (1 << np.arange(len(cols)))
    for key in np.unique(pattern[refit.any(axis=1)]):
        rows = np.flatnonzero(pattern == key)
        shown = finite[rows[0]]
        a = coef[shown]
        if np.linalg.matrix_rank(a) < 2:
            continue
        basis = np.linalg.lstsq(a, limb[np.ix_(rows, np.flatnonzero(shown))].T, rcond=None)[0]  # (2, n)
        target = np.flatnonzero(refit[rows[0]])
        limb[np.ix_(rows, target)] = (coef[target] @ basis).T
    out[:, cols] = np.where(refit, limb, out[:, cols]).astype(np.float32)
    return out
