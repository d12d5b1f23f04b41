"""Stage C: the digitized signal's classifier beside the image classifier (Config.signal_branch)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import restored_derc_state

from derc import modelfolder as mf
from derc.config import Config, get_preset
from derc.data import JitteredSignals
from derc.images import Page
from derc.inference import DercModel, _signal_weight
from derc.labels import LABELS, LEADS
from derc.modelfolder import ModelFolderError
from derc.models.signal import SignalClassifier
from derc.pipeline import train
from derc.records import index_records
from derc.render import NoiseConfig, render_ecg
from derc.signal_stage import blend, choose_weight, read_page
from derc.signals import classifier_input, read_signal
from derc.synth import write_dataset


def test_classifier_input_resamples_and_masks_what_was_shown() -> None:
    fs, n = 500.0, 5000
    signal = np.full((n, 12), np.nan, dtype=np.float32)
    signal[:1250, 0] = 1.0  # lead I shown for 2.5 s (a 3x4 panel)
    signal[:, 1] = np.arange(n) / 1000.0  # lead II for 10 s (the rhythm strip)
    signal[:1253, 3] = 2.0  # 3 of step 125's 10 samples shown: under half, so not shown
    signal[:1256, 4] = 2.0  # 6 of 10: shown, and worth 2.0 (not 2.0 diluted by the gap beside it)
    x = classifier_input(signal, fs, hz=50.0)
    assert x.shape == (24, 500) and x.dtype == np.float32
    assert (x[12, :125] == 1).all() and (x[12, 125:] == 0).all()
    assert np.allclose(x[0, :125], 1.0) and (x[0, 125:] == 0).all()
    assert (x[13] == 1).all()
    assert np.allclose(x[1], (np.arange(500) * 10 + 4.5) / 1000.0, atol=1e-5)  # means of 10 samples
    assert (x[2] == 0).all() and (x[14] == 0).all()  # never shown
    assert x[15, 125] == 0 and x[16, 125] == 1 and x[4, 125] == pytest.approx(2.0)
    short = classifier_input(np.ones((1500, 12), np.float32), fs, hz=50.0)  # 3 s: zero padded
    assert (short[12:, :150] == 1).all() and (short[12:, 150:] == 0).all() and (short[:12, 150:] == 0).all()
    with pytest.raises(ValueError, match="12"):
        classifier_input(np.ones((100, 3)), fs, hz=50.0)


def test_a_clean_small_page_reads_back_as_its_signal(tmp_path: Path) -> None:
    """At the small preset's 224x288 (about 1 px per mm) the digitizer still recovers the waveform."""
    root = tmp_path / "data"
    names = write_dataset(root, 1, seed=3, progress=False)
    record = read_signal(root / names[0])
    config = get_preset("small")
    # 3x4 shows each lead for 2.5 s and II for 10 s; the digitizer derives I and III over 2.5-5 s and aVR, aVL, aVF
    # over 0-2.5 s from the limb leads shown then (5 more 2.5 s windows)
    for layout, shown in (("3x4", 11 * 125 + 500 + 5 * 125), ("12x1", 12 * 500)):
        rendering = render_ecg(
            record.signal,
            record.fs,
            layout=layout,
            dpi=100.0,
            rng=np.random.default_rng(0),
            noise=NoiseConfig().scaled(0),
        )
        clean = cv2.resize(rendering.clean, (config.image_width, config.image_height), interpolation=cv2.INTER_AREA)
        x = read_page(1.0 - clean.astype(np.float32) / 255.0, None, record.fs, record.signal.shape[0], config)
        truth = classifier_input(record.signal, record.fs, hz=config.signal_hz)
        assert x is not None
        mask = x[12:] > 0
        assert abs(int(mask.sum()) - shown) <= 24, layout
        # each lead's shape, per 2.5 s window up to its isoelectric offset: at ~1 px per mm and 0.1 mV per px the
        # waveform is coarse (r 0.3-0.95 per lead on such pages), yet classifiable (BENCHMARKS.md)
        r = [_windowed_correlation(x[lead], truth[lead], mask[lead]) for lead in range(12)]
        assert np.median(r) > 0.75, (layout, np.round(r, 2))


def _windowed_correlation(a: np.ndarray, b: np.ndarray, on: np.ndarray, window: int = 125) -> float:
    """Correlation of ``a`` and ``b`` where ``on``, each 2.5 s window's mean taken off."""
    da, db = [], []
    for start in range(0, a.size, window):
        sel = on[start : start + window]
        if sel.sum() > 10:
            for out, v in ((da, a), (db, b)):
                part = v[start : start + window][sel]
                out.append(part - part.mean())
    return float(np.corrcoef(np.concatenate(da), np.concatenate(db))[0, 1])


def test_signal_classifier_shapes() -> None:
    net = SignalClassifier()
    assert net(torch.zeros(2, 24, 500)).shape == (2, len(LABELS))
    with pytest.raises(ValueError, match="24"):
        net(torch.zeros(2, 12, 500))


def test_the_blend_weight_follows_validation() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((200, len(LABELS))) < 0.3).astype(np.float32)
    noise = rng.random(y.shape)
    informative = 0.6 * y + 0.4 * rng.random(y.shape)
    read = np.ones(len(y), dtype=bool)
    weights, scores = choose_weight(y, noise, informative, read)
    best = scores["macro_weight"]
    assert best >= 0.8 and np.all(weights == best) and scores["macro"][best] == max(scores["macro"].values())
    assert set(scores["macro"]) == {round(w / 10, 1) for w in range(11)}
    assert all(len(row) == 11 for row in scores["label"].values()) and list(scores["label"]) == list(LABELS)
    assert np.all(choose_weight(y, informative, noise, read)[0] <= 0.2)
    # a constant image ranks nothing: every weight above 0 ties with the signal alone, and the smallest wins
    assert np.all(choose_weight(y, np.full(y.shape, 0.5), informative, read)[0] == 0.1)
    read[:50] = False  # unread pages keep the image's probabilities
    mixed = blend(noise, informative, 0.5, read)
    assert np.array_equal(mixed[:50], noise[:50]) and np.allclose(mixed[50:], 0.5 * (noise + informative)[50:])


def test_per_label_blend_weights_follow_each_label() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random((300, len(LABELS))) < 0.3).astype(np.float32)
    noise = rng.random(y.shape)
    informative = 0.6 * y + 0.4 * rng.random(y.shape)
    image, signal = noise.copy(), informative.copy()
    image[:, 5], signal[:, 5] = informative[:, 5], noise[:, 5]  # HYP: the image knows, the signal does not
    read = np.ones(len(y), dtype=bool)
    one, _ = choose_weight(y, image, signal, read)
    weights, scores = choose_weight(y, image, signal, read, per_label=True)
    assert len(set(one.tolist())) == 1 and weights[5] <= 0.2 and np.all(np.delete(weights, 5) >= 0.8)
    # an undefined label (one class only) keeps the macro weight
    y[:, 0] = 0
    weights, scores = choose_weight(y, image, signal, read, per_label=True)
    assert weights[0] == scores["macro_weight"] and scores["label"]["NORM"] == [None] * 11
    mixed = blend(image, signal, weights, read)
    assert np.allclose(mixed, weights * signal + (1 - weights) * image)


def test_gain_jitter_is_seeded_and_leaves_the_masks() -> None:
    x = torch.ones(4, 24, 50)
    y = torch.zeros(4, len(LABELS))
    a, b = (JitteredSignals(x, y, leads=12, gain=0.1, seed=1) for _ in range(2))
    assert torch.equal(a[2][0], b[2][0])
    b.set_epoch(1)
    assert not torch.equal(a[2][0], b[2][0])
    assert torch.equal(b[2][0][12:], x[2, 12:]) and b[2][0][:12].std() == 0  # one gain per item
    assert torch.equal(JitteredSignals(x, y, leads=12)[0][0], x[0])


def test_training_with_a_signal_branch_publishes_and_uses_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    names = write_dataset(data, 16, seed=4, balanced=True, progress=False)
    base = get_preset("tiny")
    config = dataclasses.replace(
        base, image_height=112, image_width=144, signal_branch=True, sig=dataclasses.replace(base.cls, epochs=2)
    )
    with restored_derc_state(2):
        train(data, names, tmp_path / "model", config=config, verbose=False)
    paths = mf.resolve(tmp_path / "model")
    assert mf.SIGNAL_CLASSIFIER_FILE in paths
    info = json.loads(paths[mf.THRESHOLDS_FILE].read_text())["info"]
    assert len(info["signal_weight"]) == 11 and all(0.0 <= w <= 1.0 for w in info["signal_weight"])
    assert len(info["signal_weight_auroc"]["macro"]) == 11
    assert Config.load(paths[mf.CONFIG_FILE]).signal_branch
    for name in ("signal_classifier_log.csv", "signal_classifier_curves.png"):
        assert (tmp_path / "model" / name).is_file(), name
    model = DercModel.load(tmp_path / "model")
    assert model.signal_classifier is not None and model.signal_weight.tolist() == info["signal_weight"]
    model = dataclasses.replace(model, signal_weight=0.5)  # whatever validation chose, the blend path runs
    # the image route has thresholds of its own, used when no signal was read
    assert model.image_thresholds is not None and model.image_thresholds.tolist() == info["image_thresholds"]
    lower, higher = model.image_thresholds < model.thresholds, model.image_thresholds > model.thresholds
    between = np.where(lower | higher, 0.5 * (model.thresholds + model.image_thresholds), -1.0)
    assert model.labels(between, image_only=True) == [name for name, on in zip(LABELS, lower) if on]
    assert model.labels(between) == [name for name, on in zip(LABELS, higher) if on]
    entry = index_records(data, names[:1])[0]
    record = read_signal(entry.path)
    page = render_ecg(record.signal, record.fs, dpi=40.0, rng=np.random.default_rng(1)).noisy
    probs, signal = model.read_record([page], fs=record.fs, num_samples=5000, leads=LEADS, record=entry.path)
    assert probs.shape == (len(LABELS),) and np.isfinite(probs).all()
    with pytest.raises(ValueError, match="2 flags for 1 images"):  # the intake's flags go one per image
        model.read_record([page], fs=record.fs, num_samples=5000, leads=LEADS, upright_by_text=[True, False])
    # the intake's pages read as read_record reads their images with their text's flags
    for vouched in (True, False):
        shown = Page(page, kept=True, text_score=1.0 if vouched else 0.0)
        by_pages = model.read_pages([shown], fs=record.fs, num_samples=5000, leads=LEADS, record=entry.path)
        by_images = model.read_record(
            [page], fs=record.fs, num_samples=5000, leads=LEADS, record=entry.path, upright_by_text=[vouched]
        )
        assert np.array_equal(by_pages[0], by_images[0])
        assert (by_pages[1] is None) == (by_images[1] is None)
        assert by_pages[1] is None or np.array_equal(by_pages[1], by_images[1], equal_nan=True)
    # bfloat16 forward passes (DERC_BF16; on by default on AMX CPUs) read the same page the same way
    fp32, bf16 = (dataclasses.replace(model, bf16=flag) for flag in (False, True))
    ink32, ink16 = fp32.denoise([page]), bf16.denoise([page])
    assert ink16.dtype == torch.float32 and float((ink16 - ink32).abs().mean()) < 0.01
    probs32 = fp32.read_record([page], fs=record.fs, num_samples=5000, leads=LEADS, record=entry.path)[0]
    probs16 = bf16.read_record([page], fs=record.fs, num_samples=5000, leads=LEADS, record=entry.path)[0]
    assert np.abs(probs16 - probs32).max() < 0.03, np.abs(probs16 - probs32).max()
    image_only = model.probabilities(model.denoise([page]))
    if signal is not None and np.isfinite(signal).any():
        assert not np.allclose(probs, image_only)
        half = dataclasses.replace(model, signal_weight=np.r_[np.ones(5), np.zeros(6)])  # per label
        mixed = half.probabilities(model.denoise([page]), signal=signal, fs=record.fs, leads=LEADS)
        only = dataclasses.replace(model, signal_weight=1.0)
        alone = only.probabilities(model.denoise([page]), signal=signal, fs=record.fs, leads=LEADS)
        assert np.allclose(mixed[5:], image_only[5:]) and np.allclose(mixed[:5], alone[:5])
    # a folder that claims a signal branch but lost its file is refused by name
    manifest = json.loads((tmp_path / "model" / mf.MANIFEST).read_text())
    del manifest["files"][mf.SIGNAL_CLASSIFIER_FILE]
    (tmp_path / "model" / mf.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(Exception, match=r"signal_classifier\.pt"):
        DercModel.load(tmp_path / "model")


def test_the_stored_blend_weight_is_one_number_or_one_per_label(tmp_path: Path) -> None:
    assert _signal_weight({"signal_weight": 1.0}, tmp_path).tolist() == [1.0] * 11
    assert _signal_weight({"signal_weight": [0.0] * 5 + [1.0] * 6}, tmp_path)[5] == 1.0
    for bad in (None, 1.5, True, [0.5] * 10, [0.5] * 10 + ["x"]):
        with pytest.raises(ModelFolderError, match="signal_weight"):
            _signal_weight({"signal_weight": bad}, tmp_path)
