"""Which way up a page is, read off its limb leads and a 3x4 page's lead II (the digitizer's orientation check).

The intake (:func:`derc.images.orient_landscape`) turns pages by their printed text, which many pages barely
have: on pages of another renderer a third of the upside-down ones kept too little header to be turned. The
signal settles those. Read the right way up, the six limb leads at a time are one heart vector seen from six
angles (Einthoven: II = I + III; Goldberger: aVR + aVL + aVF = 0), so their tracings agree
(:func:`derc.digitize.limb.limb_consistency` near 1); read upside down, the panels where limb leads belong
hold precordial leads turned over and reversed in time, which obey no such law.

:func:`read_upright` reads the ink map as shown and, only when that reading is unreadable or scores less
than ``1 - margin`` (:func:`orientation_score`; else no turned reading could win), also the page turned 180°
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

A 3x4 page carries a second cue: it shows lead II twice over its first 2.5 s, as a panel and on the rhythm strip.
Read the right way up the two readings are one signal; read upside down they are two precordial leads (V4 and V6,
turned over and reversed). :func:`orientation_score` blends the limb leads' consistency with TWICE_WEIGHT of the
two readings' correlation (:func:`lead_agreement`). The weight was chosen on 200 pages of each renderer
(bench_orientation's seed-0 pages, the seed-2 accuracy model, each page denoised and read upright and upside
down): of their 3x4 pages read upside down, the margin then turns 49 -> 71 of 144 foreign ones and 27 -> 30 of 65
of ours, and upright ones over 0 -> 0 and 1 -> 1. On seed-1 pages (not used for it): 60 -> 71 of 153 foreign and
35 -> 41 of 67 ours turned right, upright ones turned over 1 -> 2 and 0 -> 0. Most upside-down pages never get
here (the intake turns those with text), so after the intake the gain is smaller (BENCHMARKS.md).

The second reading costs a UNet pass and a digitization (19 ms a record at ``small``), so it is skipped on a page
whose printed text already vouches for it (``upright_by_text``: :attr:`derc.images.Page.upright_by_text`, a page
the intake left as shown with a clearly upright glyph score).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from derc.digitize import LeadTwice, PageReading, UnreadablePage, trace_page
from derc.digitize.limb import complete_limb_leads, limb_consistency

FLIP_MARGIN = 0.2  # the turned reading must score this much more (see orientation_score) to win
# a 3x4 page's lead II panel against its rhythm strip: weight of their agreement beside the limb leads' consistency
TWICE_WEIGHT = 0.25
MAX_LAG_S = 0.05  # the two readings of one lead may be offset in time by a row's time-axis error
MIN_OVERLAP_S = 0.2  # shorter overlaps of the two readings say nothing


def lead_agreement(reading: PageReading, *, fs: float) -> float:
    """How well the leads a page shows twice (a 3x4 page's lead II panel and its rhythm strip) agree: the best
    correlation of the two readings over time offsets up to MAX_LAG_S, averaged over such leads; NaN where the
    page shows none twice. Read the right way up, the two are one signal (median 0.80 on 224x288 ink maps of
    either renderer); read upside down they are two neighbouring precordial leads (V4 and V6, turned over and
    reversed; median 0.56-0.59)."""
    lag = max(1, round(MAX_LAG_S * fs))
    least = max(3, round(MIN_OVERLAP_S * fs))
    scores = [_best_correlation(twice, reading.signal, lag, least) for twice in reading.twice]
    scores = [score for score in scores if np.isfinite(score)]
    return float(np.mean(scores)) if scores else float("nan")


def _best_correlation(twice: LeadTwice, signal: np.ndarray, lag: int, least: int) -> float:
    """The highest Pearson correlation of ``twice.panel[j]`` with the signal's ``strip[j - s]`` over the shifts
    ``-lag <= s <= lag``, each over the samples both readings have (at least ``least``); NaN if none has."""
    strip = signal[twice.start : twice.start + twice.panel.size, twice.column].astype(np.float64)
    panel = twice.panel[: strip.size].astype(np.float64)
    padded = np.concatenate([np.full(lag, np.nan), strip, np.full(lag, np.nan)])
    shifted = sliding_window_view(padded, panel.size)[::-1]  # row s + lag: strip[j - s] beside panel[j]
    both = np.isfinite(shifted) & np.isfinite(panel)[None, :]
    a, b = np.where(both, panel[None, :], 0.0), np.where(both, shifted, 0.0)
    count = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):  # rows without a shared sample are left out below
        sum_a, sum_b = a.sum(axis=1), b.sum(axis=1)
        cov = (a * b).sum(axis=1) - sum_a * sum_b / count
        var_a = (a * a).sum(axis=1) - sum_a * sum_a / count
        var_b = (b * b).sum(axis=1) - sum_b * sum_b / count
        correlation = cov / np.sqrt(var_a * var_b)
    usable = (count >= least) & (var_a > 0) & (var_b > 0)
    return float(correlation[usable].max()) if usable.any() else float("nan")


def orientation_score(reading: PageReading, leads: Sequence[str], *, fs: float) -> float:
    """How right-way-up a reading looks: its limb leads' consistency (:func:`limb_consistency`), blended with
    TWICE_WEIGHT of :func:`lead_agreement` where the page shows a lead twice; NaN where no three limb leads are
    shown at once (no evidence). At most 1."""
    limb = limb_consistency(reading.signal, leads)
    agree = lead_agreement(reading, fs=fs)
    if np.isnan(limb) or np.isnan(agree):
        return limb
    return (limb + TWICE_WEIGHT * agree) / (1.0 + TWICE_WEIGHT)


@dataclass(frozen=True)
class Reading:
    """A page's signal (samples x leads, mV, NaN where not shown) and whether it was read turned 180°."""

    signal: np.ndarray
    turned: bool
    consistency: float  # orientation_score of the reading kept (NaN: no three limb leads shown at once)
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
    """Digitize ``ink`` (see :func:`derc.digitize.digitize`, whose arguments these are) the way up its
    :func:`orientation_score` says. ``turned_ink`` gives the ink map of the page turned 180° when asked (None:
    ``ink`` turned). ``upright_by_text``: the page's printed text vouches for it as shown, so it is read only that
    way. Raises the as-shown reading's :class:`UnreadablePage` when it is not read turned or neither way reads."""
    if not 0.0 <= margin <= 1.0:
        raise ValueError(f"margin must lie in [0, 1], got {margin}")

    def attempt(turned: bool) -> tuple[np.ndarray, float]:
        k = 2 if turned else 0
        if not turned:
            shown = ink
        else:
            shown = np.rot90(ink, k) if turned_ink is None else turned_ink()
        photo = None if page is None else np.ascontiguousarray(np.rot90(page, k))
        reading = trace_page(  # the check needs the tracings as read, not their limb leads' least-squares fit
            np.ascontiguousarray(shown),
            fs=fs,
            num_samples=num_samples,
            leads=leads,
            page=photo,
            source_shape=source_shape,
        )
        return reading.signal, orientation_score(reading, leads, fs=fs)

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


__all__ = ["FLIP_MARGIN", "Reading", "lead_agreement", "orientation_score", "read_upright"]
