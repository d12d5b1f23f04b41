"""Training data that must work or be reported: one folder of odd records, one tiny training run (module
fixture, ~15 s), then one test per kind of oddity: what the data path makes of it and what training logged.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb
from conftest import restored_derc_state

import helper_code
import team_code
from derc import modelfolder as mf
from derc.config import get_preset
from derc.data import CachedItems, ClassifierViews, DenoisingPairs, cache_if_small
from derc.errors import DercError
from derc.inference import DercModel
from derc.labels import LABELS, LEADS, encode
from derc.pipeline import train
from derc.records import RecordEntry, read_entry
from derc.signals import read_signal
from derc.synth import synthesize

CONFIG = get_preset("tiny")
USABLE = 14  # labeled records below whose signal can be used


def quiet_training() -> contextlib.AbstractContextManager[None]:
    """Training installs file handlers on the 'derc' logger: undo that afterwards."""
    return restored_derc_state(threads=1)


def write(folder: Path, name: str, signal: np.ndarray, fs: int, leads: list[str], labels: str | None) -> None:
    comments = ["Age: 60", "Sex: Female"] + ([f"Labels: {labels}"] if labels is not None else [])
    wfdb.wrsamp(
        record_name=name,
        fs=fs,
        units=["mV"] * len(leads),
        sig_name=leads,
        p_signal=signal.astype(np.float64),
        fmt=["16"] * len(leads),
        adc_gain=[1000.0] * len(leads),
        baseline=[0] * len(leads),
        comments=comments,
        write_dir=str(folder),
    )


def ecg(labels: list[str], seed: int, fs: int = 500, seconds: float = 10.0) -> np.ndarray:
    return synthesize(labels, rng=np.random.default_rng(seed), fs=fs, duration_s=seconds)


def nan_signal() -> np.ndarray:
    signal = ecg(["HYP"], 30)
    signal[1000:2500, :6] = np.nan  # unplotted stretches, as in images made from partial signals
    signal[:, 8] = np.nan  # a lead never plotted
    return signal


ODD_LEADS = ["v6", "V5", "V4", "V3", "v2", "V1", "AVF", "avl", "aVR", "III", "ii", "I"]  # reversed, any case
KEPT_LEADS = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("odd_training")
    leads = list(LEADS)
    base = [["NORM"], ["STTC"], ["Old MI"], ["CD", "BRADY"], ["AFIB/AFL"], ["NORM", "PVC"]]
    for i, labels in enumerate(base):
        write(root, f"base{i}", ecg(labels, i), 500, leads, ", ".join(labels))
    write(root, "hz100", ecg(["NORM"], 20, fs=100), 100, leads, "NORM")
    write(root, "short", ecg(["STTC"], 21, seconds=4.0), 500, leads, "STTC")
    write(root, "long", ecg(["NORM"], 22, seconds=25.0), 500, leads, "NORM")
    write(root, "reordered", ecg(["CD"], 23)[:, ::-1], 500, ODD_LEADS, "CD")
    write(root, "missing", ecg(["NORM"], 24)[:, [LEADS.index(n) for n in KEPT_LEADS]], 500, KEPT_LEADS, "NORM")
    write(root, "nan", nan_signal(), 500, leads, "HYP")
    write(root, "oddlabels", ecg(["NORM"], 25), 500, leads, "  norm ,ACUTE   mi,, Bogus label , tachy")
    write(root, "emptylabels", ecg(["NORM"], 26), 500, leads, "")  # labeled with no diagnosis: all negative
    write(root, "unlabeled0", ecg(["NORM"], 27), 500, leads, None)
    write(root, "unlabeled1", ecg(["NORM"], 28), 500, leads, None)
    write(root, "truncated", ecg(["NORM"], 29), 500, leads, "NORM")
    data = (root / "truncated.dat").read_bytes()
    (root / "truncated.dat").write_bytes(data[: len(data) // 3])  # e.g. an interrupted copy
    write(root, "unnamed", ecg(["NORM"], 31), 500, [f"ch{i}" for i in range(12)], "NORM")
    return root


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    model = tmp_path_factory.mktemp("odd_model") / "model"
    with quiet_training():
        train(folder, helper_code.find_records(str(folder)), model, config=CONFIG, verbose=False)
    return {"model": model, "log": (model / "train.log").read_text()}


def entry(folder: Path, name: str) -> RecordEntry:
    found = read_entry(folder / name)
    assert found is not None
    return found


def check_data_path(entries: list[RecordEntry]) -> None:
    """Rendered training pairs and classifier views of ``entries`` are finite and show a trace."""
    pairs = DenoisingPairs(entries, CONFIG, views=3, seed=0)  # 3 views: the layouts differ per view
    views = ClassifierViews(entries, CONFIG, views=1, seed=0)
    assert len(pairs) == 3 * len(entries)
    for index in range(len(pairs)):
        image, target = pairs[index]
        assert image.shape == (3, CONFIG.image_height, CONFIG.image_width) and torch.isfinite(image).all()
        assert 0.0 < float(target.mean()) < 0.95, f"item {index}: ink fraction {float(target.mean())}"  # tiny: coarse
    for index in range(len(views)):
        image, labels = views[index]
        assert torch.isfinite(image).all() and labels.shape == (len(LABELS),)


def test_the_odd_folder_trains_to_a_working_model(trained: dict[str, object], folder: Path) -> None:
    manifest = json.loads((trained["model"] / mf.MANIFEST).read_text())
    assert manifest["records"] == USABLE
    model = DercModel.load(trained["model"], device=torch.device("cpu"))
    image = np.full((300, 400, 3), 255, np.uint8)
    assert set(model.classify([image])) <= set(LABELS)


def test_100_hz_and_500_hz_records(trained: dict[str, object], folder: Path) -> None:
    assert read_signal(folder / "hz100").fs == 100.0 and read_signal(folder / "base0").fs == 500.0
    assert read_signal(folder / "hz100").signal.shape == (1000, 12)
    check_data_path([entry(folder, "hz100"), entry(folder, "base0")])


def test_records_shorter_or_longer_than_10_s(trained: dict[str, object], folder: Path) -> None:
    assert read_signal(folder / "short").duration_s == pytest.approx(4.0)
    assert read_signal(folder / "long").duration_s == pytest.approx(25.0)
    check_data_path([entry(folder, "short"), entry(folder, "long")])


def test_leads_in_another_order_or_missing(trained: dict[str, object], folder: Path) -> None:
    reordered = read_signal(folder / "reordered").signal
    np.testing.assert_allclose(reordered, ecg(["CD"], 23), atol=1e-3)  # back in LEADS order (16-bit grid)
    missing = read_signal(folder / "missing").signal
    absent = [i for i, name in enumerate(LEADS) if name not in KEPT_LEADS]
    assert np.isnan(missing[:, absent]).all()
    assert np.isfinite(np.delete(missing, absent, axis=1)).all()
    check_data_path([entry(folder, "reordered"), entry(folder, "missing")])


def test_nan_samples_survive_wfdb_and_rendering(trained: dict[str, object], folder: Path) -> None:
    header = helper_code.load_header(str(folder / "nan"))
    assert "-32768" in header  # wfdb stores NaN as the 16-bit format's invalid value ...
    signal = read_signal(folder / "nan").signal
    np.testing.assert_array_equal(np.isnan(signal), np.isnan(nan_signal()))  # ... and reads it back as NaN
    check_data_path([entry(folder, "nan")])


def test_unknown_and_oddly_spaced_labels_are_warned_and_ignored(trained: dict[str, object], folder: Path) -> None:
    np.testing.assert_array_equal(entry(folder, "oddlabels").labels, encode(["NORM", "Acute MI", "TACHY"]))
    assert "unknown label 'Bogus label'" in trained["log"] and "oddlabels" in trained["log"]
    assert not entry(folder, "emptylabels").labels.any()


def test_records_without_labels_are_skipped_with_a_count(trained: dict[str, object], folder: Path) -> None:
    assert read_entry(folder / "unlabeled0") is None
    assert "skipped 2 record(s) without a '# Labels:' line" in trained["log"]


def test_an_empty_training_set_is_a_clear_error(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No data were provided"):
        team_code.train_models(str(tmp_path), str(tmp_path / "m0"), False)
    only_unlabeled = tmp_path / "unlabeled"
    only_unlabeled.mkdir()
    write(only_unlabeled, "a", ecg(["NORM"], 40), 500, list(LEADS), None)
    with quiet_training(), pytest.raises(DercError, match="no usable training records"):
        train(only_unlabeled, ["a"], tmp_path / "m1", config=CONFIG, verbose=False)
    assert not (tmp_path / "m1" / mf.MANIFEST).exists()


def test_a_label_absent_from_training_gets_the_fallback_threshold(trained: dict[str, object]) -> None:
    assert "label(s) never present in the training records: PAC;" in trained["log"]
    thresholds = json.loads(mf.resolve(trained["model"])[mf.THRESHOLDS_FILE].read_text())
    assert "PAC" in thresholds["info"]["fallback"]
    assert thresholds["thresholds"][LABELS.index("PAC")] == 0.5


def test_a_truncated_or_unnamed_signal_is_reported_and_skipped(trained: dict[str, object], folder: Path) -> None:
    truncated, unnamed = entry(folder, "truncated"), entry(folder, "unnamed")
    assert not truncated.has_signal and "truncated" in truncated.signal_problem
    assert not unnamed.has_signal and "standard 12-lead name" in unnamed.signal_problem
    assert "record truncated: signal unusable (signal file truncated.dat is truncated" in trained["log"]
    assert "record unnamed: signal unusable (none of its leads" in trained["log"]
    assert trained["log"].count("skipping it") == 2


def test_validation_views_cached_in_memory_are_the_renderings_bit_for_bit(folder: Path) -> None:
    entries = [entry(folder, f"base{i}") for i in range(4)] + [entry(folder, "nan"), entry(folder, "hz100")]
    pairs, views = DenoisingPairs(entries, CONFIG, views=1, seed=1), ClassifierViews(entries, CONFIG, views=1, seed=3)
    for dataset in (pairs, views):
        cached = CachedItems(dataset, num_workers=2, batch_size=4)  # workers and a partial last batch
        assert len(cached) == len(dataset)
        assert cached.nbytes < sum(t.numel() * t.element_size() for t in dataset[0]) * len(dataset) / 3  # 8-bit
        for index in range(len(dataset)):
            for kept, fresh in zip(cached[index], dataset[index]):
                assert kept.dtype == fresh.dtype and torch.equal(kept, fresh), f"{type(dataset).__name__} {index}"
    assert cache_if_small(dataset, budget_mb=0) is dataset
    assert cache_if_small(dataset, budget_mb=1e-3) is dataset  # does not fit
    assert isinstance(cache_if_small(dataset, budget_mb=10), CachedItems)


def test_a_column_that_is_not_8_bit_is_kept_exactly() -> None:
    class Odd(torch.utils.data.Dataset):
        def set_epoch(self, epoch: int) -> None:
            pass

        def __len__(self) -> int:
            return 5

        def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
            grey = torch.full((2,), index / 255.0)
            return grey, torch.tensor([0.3 * index if index == 4 else 1.0])  # 8-bit in one batch, not in the other

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    cached = CachedItems(Odd(), batch_size=4)
    assert torch.equal(torch.rand(3), expected)  # caching leaves the global RNG (model initialisation) alone
    for index in range(5):
        for kept, fresh in zip(cached[index], Odd()[index]):
            assert torch.equal(kept, fresh)


def test_training_logged_the_validation_cache(trained: dict[str, object]) -> None:
    assert "validation views cached in memory" in trained["log"]
