"""The digitizer's orientation check: a page read upside down is read the right way up when its limb leads say so
(derc.digitize.upright), and the image route then classifies the page turned the same way."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import restored_derc_state

from derc.digitize import LeadTwice, PageReading, UnreadablePage, digitize, trace_page
from derc.digitize.evaluation import challenge_snr, render_ink
from derc.digitize.limb import limb_consistency
from derc.digitize.upright import FLIP_MARGIN, MAX_LAG_S, lead_agreement, orientation_score, read_upright
from derc.inference import Digitizer
from derc.labels import LEADS
from derc.synth import sample_labels, synthesize

FS = 500.0
N = 5000
SHAPE = (448, 576)  # half the paper preset's size: fast, and still readable


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    rng = np.random.default_rng(5)
    return synthesize(sample_labels(rng), rng=rng, fs=int(FS)).astype(np.float64)


@pytest.mark.parametrize("layout", ["3x4", "6x2", "12x1"])
def test_an_upside_down_page_is_read_upright(signal: np.ndarray, layout: str) -> None:
    ink = render_ink(signal, FS, layout, rng=np.random.default_rng(2), shape=SHAPE).ink
    upright = read_upright(ink, fs=FS, num_samples=N, leads=LEADS)
    assert not upright.turned
    np.testing.assert_array_equal(upright.signal, digitize(ink, fs=FS, num_samples=N, leads=LEADS))
    wrong = orientation_score(trace_page(np.rot90(ink, 2), fs=FS, num_samples=N, leads=LEADS), LEADS, fs=FS)
    print(layout, "orientation score right", round(upright.consistency, 3), "upside down", round(wrong, 3))
    assert upright.consistency > wrong + FLIP_MARGIN
    turned = read_upright(np.ascontiguousarray(np.rot90(ink, 2)), fs=FS, num_samples=N, leads=LEADS)
    assert turned.turned and turned.consistency == pytest.approx(upright.consistency, abs=0.05)
    snr = float(np.nanmean(challenge_snr(signal, turned.signal, FS)))
    assert snr >= float(np.nanmean(challenge_snr(signal, upright.signal, FS))) - 1.0, snr


def test_a_3x4_page_shows_lead_ii_twice_and_both_readings_agree_the_right_way_up(signal: np.ndarray) -> None:
    ink = render_ink(signal, FS, "3x4", rng=np.random.default_rng(2), shape=SHAPE).ink
    right = trace_page(ink, fs=FS, num_samples=N, leads=LEADS)
    np.testing.assert_array_equal(right.signal, digitize(ink, fs=FS, num_samples=N, leads=LEADS, derive_limb=False))
    (twice,) = right.twice  # the lead II panel, over the first 2.5 s that the rhythm strip also shows
    assert LEADS[twice.column] == "II" and twice.start == 0 and twice.panel.shape == (N // 4,)
    upside_down = trace_page(np.ascontiguousarray(np.rot90(ink, 2)), fs=FS, num_samples=N, leads=LEADS)
    agree, disagree = lead_agreement(right, fs=FS), lead_agreement(upside_down, fs=FS)
    print("lead II panel vs rhythm strip: right way up", round(agree, 3), "upside down", round(disagree, 3))
    assert agree > 0.95 and disagree < agree - 0.05
    assert orientation_score(right, LEADS, fs=FS) > orientation_score(upside_down, LEADS, fs=FS) + FLIP_MARGIN
    # a layout without a rhythm strip shows every lead once: the limb leads alone score it
    ink = render_ink(signal, FS, "6x2", rng=np.random.default_rng(2), shape=SHAPE).ink
    once = trace_page(ink, fs=FS, num_samples=N, leads=LEADS)
    assert once.twice == () and np.isnan(lead_agreement(once, fs=FS))
    assert orientation_score(once, LEADS, fs=FS) == limb_consistency(once.signal, LEADS)


def test_lead_agreement_forgives_a_small_time_offset_only(signal: np.ndarray) -> None:
    quarter = N // 4
    strip = np.full((N, len(LEADS)), np.nan, np.float32)
    strip[:, 1] = signal[:, 1]
    lag = round(0.6 * MAX_LAG_S * FS)

    def agreement(panel: np.ndarray) -> float:
        return lead_agreement(PageReading(strip, (LeadTwice(1, 0, panel.astype(np.float32)),)), fs=FS)

    assert agreement(signal[:quarter, 1] + 0.3) == pytest.approx(1.0)  # a baseline offset does not count
    assert agreement(signal[lag : lag + quarter, 1]) == pytest.approx(1.0)  # nor a time offset within MAX_LAG_S
    far = 2 * round(MAX_LAG_S * FS) + 40
    assert agreement(signal[far : far + quarter, 1]) < 0.9
    assert agreement(-signal[:quarter, 1]) < 0.0  # a lead turned over
    assert np.isnan(agreement(np.full(quarter, np.nan)))  # nothing traced: no evidence
    assert np.isnan(lead_agreement(PageReading(strip), fs=FS))


def test_the_check_can_be_switched_off_and_reports_the_turn(signal: np.ndarray) -> None:
    ink = render_ink(signal, FS, "3x4", rng=np.random.default_rng(3), shape=SHAPE).ink
    maps = torch.from_numpy(np.ascontiguousarray(np.rot90(ink, 2)))[None, None]
    on = Digitizer().read(maps, fs=FS, num_samples=N, leads=LEADS)
    off = Digitizer(upright_check=False).read(maps, fs=FS, num_samples=N, leads=LEADS)
    assert on is not None and on.turned
    assert off is not None and not off.turned and off.consistency < on.consistency - FLIP_MARGIN


def test_a_page_its_text_vouches_for_is_read_once(signal: np.ndarray) -> None:
    """The turned reading (a UNet pass and a digitization) is skipped on a page whose printed text vouches for it as
    shown, even where its limb leads disagree; without that the check reads it turned as before."""
    ink = render_ink(signal, FS, "6x2", rng=np.random.default_rng(6), shape=SHAPE).ink
    upside_down = np.ascontiguousarray(np.rot90(ink, 2))
    asked: list[int] = []

    def turned() -> np.ndarray:
        asked.append(1)
        return ink

    args = {"fs": FS, "num_samples": N, "leads": LEADS, "turned_ink": turned}
    kept = read_upright(upside_down, upright_by_text=True, **args)
    assert asked == [] and not kept.turned and not kept.read_twice and kept.consistency < 1.0 - FLIP_MARGIN
    fixed = read_upright(upside_down, **args)
    assert asked == [1] and fixed.turned and fixed.read_twice
    once = read_upright(ink, **args)  # consistent as shown: read once either way
    assert asked == [1] and not once.turned and not once.read_twice
    with pytest.raises(UnreadablePage):  # unreadable as shown and vouched for: no turned reading to fall back on
        read_upright(np.random.default_rng(0).random(SHAPE, dtype=np.float32), upright_by_text=True, **args)
    assert asked == [1]


def test_margin_is_checked(signal: np.ndarray) -> None:
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match="margin"):
            read_upright(np.zeros((64, 80), np.float32), fs=FS, num_samples=N, leads=LEADS, margin=bad)


def test_the_turned_page_is_denoised_anew_when_the_check_reads_it(signal: np.ndarray) -> None:
    """The ink map of an upside-down photo is poor (here: blurred); the check asks for the photo turned upright
    to be denoised again and reads that, not the poor ink map turned."""
    page = render_ink(signal, FS, "6x2", rng=np.random.default_rng(4), shape=SHAPE)
    poor = cv2.GaussianBlur(np.ascontiguousarray(np.rot90(page.ink, 2)), (0, 0), 3.0)
    upside_down = np.ascontiguousarray(np.rot90(page.photo, 2))
    asked: list[np.ndarray] = []

    def denoise(photo: np.ndarray) -> torch.Tensor:  # stands in for the UNet: the clean ink of the upright photo
        asked.append(photo)
        return torch.from_numpy(page.ink)[None, None]

    maps = torch.from_numpy(poor)[None, None]
    reading = Digitizer().read(maps, fs=FS, num_samples=N, leads=LEADS, images=[upside_down], denoise=denoise)
    assert reading is not None and reading.turned and reading.consistency > 0.9
    assert len(asked) == 1 and np.array_equal(asked[0], np.rot90(upside_down, 2))
    direct = digitize(page.ink, fs=FS, num_samples=N, leads=LEADS, page=page.photo)  # the upright page read
    np.testing.assert_allclose(reading.signal, direct, atol=1e-5)


class _InkOf(torch.nn.Module):
    """Stands in for the UNet: the clean ink map of ``upright`` (the photo as the model sees it), and that ink map
    turned and blurred (a poor reading) for any other photo."""

    def __init__(self, upright: np.ndarray, ink: np.ndarray) -> None:
        super().__init__()
        self.upright = torch.from_numpy(np.ascontiguousarray(upright)).permute(2, 0, 1).float().div(255.0)
        self.clean = torch.from_numpy(ink)[None]
        self.poor = torch.from_numpy(cv2.GaussianBlur(np.ascontiguousarray(np.rot90(ink, 2)), (0, 0), 3.0))[None]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.clean if torch.equal(x, self.upright) else self.poor for x in batch])


def test_the_image_classifier_beside_the_digitizer_gives_the_same_probabilities(
    signal: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DercModel.image_thread``: the image classifier's pass runs while the caller digitizes; its probabilities are
    the serial ones, and a page the digitizer reads turned is classified as its turned ink map, as without it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from common import random_model

    from derc.config import get_preset
    from derc.inference import DercModel, image_thread_wanted
    from derc.readahead import ReadAhead
    from derc.runtime import available_cpus

    config = dataclasses.replace(get_preset("tiny"), image_height=SHAPE[0], image_width=SHAPE[1], signal_branch=True)
    page = render_ink(signal, FS, "6x2", rng=np.random.default_rng(4), shape=SHAPE)
    upside_down = np.ascontiguousarray(np.rot90(page.photo, 2))
    monkeypatch.delenv("DERC_IMAGE_THREAD", raising=False)
    with restored_derc_state(1):
        loaded = DercModel.load(random_model(tmp_path / "model", config), read_ahead=False, image_thread=True)
        assert loaded.image_thread is not None
        beside = dataclasses.replace(loaded, signal_weight=0.5, denoiser=_InkOf(page.photo, page.ink))
        serial = dataclasses.replace(beside, image_thread=None)
        for photo, turned in ((page.photo, False), (upside_down, True)):
            args = {"fs": FS, "num_samples": N, "leads": LEADS}
            (probs, signal_read), (alone, alone_read) = (m.read_record([photo], **args) for m in (beside, serial))
            assert np.array_equal(probs, alone) and np.array_equal(signal_read, alone_read, equal_nan=True)
            ink = torch.from_numpy(page.ink)[None, None]  # the page the signal came from, either way up
            assert np.array_equal(probs, serial.probabilities(ink, signal=signal_read, fs=FS, leads=LEADS)), turned
        assert beside._classify_beside(ink).result().shape == (11,)
        # a signal-only model skips the image classifier for a read page: nothing to run beside the digitizer
        assert dataclasses.replace(beside, signal_weight=1.0)._classify_beside(ink) is None
        loaded.image_thread.close(wait=True)
        # by default: where both run, on a GPU, or on a CPU with room for the pass beside the caller and helpers
        torch.set_num_threads(1)
        assert image_thread_wanted(beside) == (available_cpus() > 1)  # one torch thread: no parallel region
        assert image_thread_wanted(dataclasses.replace(beside, device=torch.device("cuda")))
        assert not image_thread_wanted(dataclasses.replace(beside, signal_weight=1.0))
        assert not image_thread_wanted(dataclasses.replace(beside, signal_classifier=None))
        torch.set_num_threads(available_cpus())
        assert not image_thread_wanted(beside)  # every core in torch's pool
        monkeypatch.setattr("derc.inference.available_cpus", lambda: 8)
        helped = dataclasses.replace(beside, read_ahead=ReadAhead(depth=1))
        for threads, without_helper, with_helper in ((7, True, False), (6, True, True), (8, False, False)):
            torch.set_num_threads(threads)  # 8 cores: torch's threads + the digitizing caller + the helpers
            assert (image_thread_wanted(beside), image_thread_wanted(helped)) == (without_helper, with_helper), threads
        monkeypatch.undo()
        monkeypatch.setenv("DERC_IMAGE_THREAD", "1")  # the setting decides where both passes run
        assert image_thread_wanted(beside) and not image_thread_wanted(dataclasses.replace(beside, signal_weight=1.0))
        monkeypatch.setenv("DERC_IMAGE_THREAD", "0")
        torch.set_num_threads(1)
        assert not image_thread_wanted(beside)
        monkeypatch.setenv("DERC_IMAGE_THREAD", "yes")
        with pytest.raises(ValueError, match="DERC_IMAGE_THREAD must be 0 or 1"):
            image_thread_wanted(beside)
