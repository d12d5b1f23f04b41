"""Which way up a page is, read off its limb leads (the digitizer's orientation check).

The intake (:func:`derc.images.orient_landscape`) turns pages by their printed text, which many pages barely
have: on pages of another renderer a third of the upside-down ones kept too little header to be turned. The
signal settles those. Read the right way up, the six limb leads at a time are one heart vector seen from six
angles (Einthoven: II = I + III; Goldberger: aVR + aVL + aVF = 0), so their tracings agree
(:func:`derc.digitize.limb.limb_consistency` near 1); read upside down, the panels where limb leads belong
hold precordial leads turned over and reversed in time, which obey no such law.

:func:`read_upright` reads the ink map as shown and, only when that reading is unreadable or explains less
than ``1 - margin`` of its limb leads (else no turned reading could win), also the page turned 180°
(``turned_ink``: the UNet run again on the photo turned over, since its ink map of an upside-down photo is
poorer than that of the same photo upright; the ink map turned by default); the turned reading wins when it is
readable and more consistent by ``margin``. The margin was set on photographed pages of our renderer (150 test
pages of the accuracy benchmark's seed-1 model, each denoised and read upright and upside down): right
readings score 0.85 (median, 10th percentile 0.69), wrong ones 0.42 (99th percentile 0.79); the right reading
beat the wrong one by at least 0.07 on 99 % of pages and by 0.43 at the median. A margin of 0.2 keeps 149 of
the 150 corrections with room for pages read worse than ours (turning an upright page over is the costlier
error); 27 % of their upright pages are read twice. Upside-down 3x4 pages are the weak case: their wrong
readings still score 0.64-0.82 (the limb leads of a 3x4 page give one or two constraints at a time, and
neighbouring leads correlate).

The second reading costs a UNet pass and a digitization (19 ms a record at ``small``), so it is skipped on a page
whose printed text already vouches for it (``upright_by_text``: :attr:`derc.images.Page.upright_by_text`, a page
the intake left as shown with a clearly upright glyph score).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from derc.digitize import UnreadablePage, digitize
from derc.digitize.limb import complete_limb_leads, limb_consistency

FLIP_MARGIN = 0.2  # the turned reading must explain this much more of its limb leads' energy to win


@dataclass(frozen=True)
class Reading:
    """A page's signal (samples x leads, mV, NaN where not shown) and whether it was read turned 180°."""

    signal: np.ndarray
    turned: bool
    consistency: float  # limb_consistency of the reading kept (NaN: no three limb leads shown at once)
    read_twice: bool = False  # the page was also read turned 180° (the check's cost: a UNet pass, a digitization)


def read_upright(
    ink: np.ndarray,
    *,
    fs: float,
    num_samples: int,
    leads: Sequence[str],
    page: np.ndarray | None = None,
    source_shape: tuple[int, int] | None = None,
    turned_ink: Callable[[], np.ndarray] | None = None,
    upright_by_text: bool = False,
    margin: float = FLIP_MARGIN,
) -> Reading:
    """Digitize ``ink`` (see :func:`derc.digitize.digitize`, whose arguments these are) the way up its limb
    leads say. ``turned_ink`` gives the ink map of the page turned 180° when asked (None: ``ink`` turned).
    ``upright_by_text``: the page's printed text vouches for it as shown, so it is read only that way. Raises the
    as-shown reading's :class:`UnreadablePage` when it is not read turned or neither way reads."""
    if not 0.0 <= margin <= 1.0:
        raise ValueError(f"margin must lie in [0, 1], got {margin}")

    def attempt(turned: bool) -> tuple[np.ndarray, float]:
        k = 2 if turned else 0
        if not turned:
            shown = ink
        else:
            shown = np.rot90(ink, k) if turned_ink is None else turned_ink()
        photo = None if page is None else np.ascontiguousarray(np.rot90(page, k))
        signal = digitize(
            np.ascontiguousarray(shown),
            fs=fs,
            num_samples=num_samples,
            leads=leads,
            page=photo,
            source_shape=source_shape,
            derive_limb=False,  # the check needs the tracings as read, not their least-squares fit
        )
        return signal, limb_consistency(signal, leads)

    try:
        signal, score = attempt(False)
    except UnreadablePage as error:
        signal, score, refusal = None, 0.0, error
    # no turned reading could win, or no evidence (NaN), or the text vouches for the page as shown
    if signal is not None and (upright_by_text or not score < 1.0 - margin):
        return Reading(complete_limb_leads(signal, leads), False, score)
    if signal is None and upright_by_text:
        raise refusal
    try:
        other, other_score = attempt(True)
    except UnreadablePage:
        other, other_score = None, float("nan")
    if other is not None and other_score > score + margin:
        return Reading(complete_limb_leads(other, leads), True, other_score, read_twice=True)
    if signal is None:
        raise refusal
    return Reading(complete_limb_leads(signal, leads), False, score, read_twice=True)


__all__ = ["FLIP_MARGIN", "Reading", "read_upright"]
