"""Smoke runs of the benchmarks (tiny preset): they run end to end and append a result line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from derc.labels import LEADS

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, tmp_path: Path, *extra: str) -> dict:
    results = ROOT / "benchmarks" / "results.jsonl"
    before = results.read_text().count("\n") if results.exists() else 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "DERC_DEVICE": "cpu"}
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--smoke", *extra], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = results.read_text().splitlines()
    assert len(lines) == before + 1
    return json.loads(lines[-1])


@pytest.mark.slow
def test_speed_smoke(tmp_path) -> None:
    row = _run("bench_speed.py", tmp_path)
    tiny = row["results"]["cpu"]["tiny"]
    assert row["smoke"] and tiny["latency_p50_s"] > 0 and tiny["unet_gflop"] > 0
    assert row["results"]["cpu"]["hardware"]["matmul_flops"] > 0
    assert tiny["data_workers"] == 0 and tiny["train_views_per_s_per_worker"] > 0 and tiny["data_supply_ratio"] > 0


@pytest.mark.slow
def test_accuracy_smoke(tmp_path) -> None:
    row = _run("bench_accuracy.py", tmp_path)
    assert set(row["variants"]) == {"unet", "raw"}
    assert all(0 <= v["macro_f"] <= 1 for v in row["variants"].values())


@pytest.mark.slow
def test_foreign_smoke(tmp_path) -> None:
    """A model on pages of the independent renderer, both sets written turned a quarter: both sets scored, the
    foreign one by what its pages show."""
    row = _run("bench_foreign.py", tmp_path, "--turn", "1")
    assert row["records"] == 4 and row["turn"] == 1 and set(row) >= {"own", "foreign"}
    assert all(0 <= row[name]["macro_f"] <= 1 and row[name]["records"] == 4 for name in ("own", "foreign"))
    assert set(row["foreign"]["by_grid"]) <= {"red", "grey", "hue", "none"}
    assert sum(v["records"] for v in row["foreign"]["by_layout"].values()) == 4


def test_orientation_smoke(tmp_path) -> None:
    """Both renderers' pages at every quarter turn and two analysis sides; every upright page of ours kept upright."""
    row = _run("bench_orientation.py", tmp_path)
    assert row["smoke"] and row["pages"] == 3
    sides = (row["default"], 600)
    for renderer in ("ours", "foreign"):
        for side in sides:
            got = row[f"{renderer}_{side}"]
            assert 0 <= got["upright_turned"] <= 3 and 0 <= got["quarter_wrong"] <= 6 and 0 <= got["half_left"] <= 3
            assert got["ms_per_page"] > 0
    assert row[f"ours_{row['default']}"]["upright_turned"] == 0
    for renderer in ("ours", "foreign"):  # the limb-lead check ran on every page the intake returned
        check = row[f"{renderer}_{row['default']}_checked"]["check"]
        assert 0 <= check["turned"] <= check["read_twice"] and check["read_twice"] + check["unreadable"] <= 12


def test_signal_ceiling_smoke(tmp_path) -> None:
    row = _run("bench_signal_ceiling.py", tmp_path)
    assert row["smoke"] and row["hz"] == 25 and len(row["val_auroc_per_epoch"]) == 1
    assert set(row["per_label_f"]) == set(row["per_label_auroc"]) and len(row["per_label_f"]) == 11
    assert 0 <= row["macro_f"] <= 1 and row["train_s"] > 0


def test_signal_ceiling_resamples_by_area_and_trains_reproducibly(tmp_path: Path) -> None:
    """The signal benchmark's input: 500 Hz records area-averaged to 25 Hz (20-sample means, 10 s) with their shown
    masks; its fit:
    the same seed gives the same validation curve and the same weights."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from argparse import Namespace

    import torch
    from bench_signal_ceiling import fit, signals

    from derc.records import index_records
    from derc.signals import read_signal
    from derc.synth.dataset import write_dataset

    names = write_dataset(tmp_path / "records", 4, seed=5, balanced=True, progress=False)
    entries = index_records(tmp_path / "records", names)
    x, y = signals(entries, 25.0)
    assert x.shape == (4, 24, 250) and y.shape == (4, 11)
    raw = np.nan_to_num(np.asarray(read_signal(entries[1].path).signal, dtype=np.float32))
    np.testing.assert_allclose(x[1, :12].numpy(), raw.reshape(250, 20, 12).mean(axis=1).T, atol=1e-5)
    assert (x[:, 12:] == 1).all()  # every sample of a record's own signal is shown
    assert y[1].tolist() == entries[1].labels.tolist()

    args = Namespace(seed=3, lr=1e-3, epochs=2, batch=2)
    first, curve = fit(x, y, x, y, args)
    second, again = fit(x, y, x, y, args)
    assert curve == again and len(curve) == 2
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert first(x).shape == (4, 11)


def test_digitize_smoke(tmp_path) -> None:
    row = _run("bench_digitize.py", tmp_path)
    assert row["smoke"] and row["cases"] == ["clean896"] and row["grid"]
    assert set(row["snr_shown_db"]) == {"3x4/clean896", "6x2/clean896", "12x1/clean896"}
    assert min(row["snr_shown_db"].values()) > 10.0 and row["sec_per_page_896"] > 0


def test_forward_timer_splits_a_run_models_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The speed benchmark's non-forward share: both forward passes of each call are timed, inside the call."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_speed import forward_timer, run_models_latency
    from common import random_model, synth
    from conftest import restored_derc_state

    from derc.config import get_preset
    from derc.inference import DercModel

    monkeypatch.setenv("DERC_THREADS", "1")
    records = [str(tmp_path / "data" / r) for r in synth(tmp_path / "data", 1, 3, images=1, dpi=50.0)]
    with restored_derc_state(1):
        model = DercModel.load(random_model(tmp_path / "model", get_preset("tiny")))
        times, outside, digitizing, intake = run_models_latency(model, records, 2)
        spans: list[tuple[float, float]] = []
        with forward_timer(model, spans):
            model.classify([np.full((120, 160, 3), 255, np.uint8)])
    assert len(times) == len(outside) == 2 and all(0.0 < share < 1.0 for share in outside)
    assert digitizing == [0.0, 0.0]  # tiny ink maps are too coarse to digitize: no digitizer runs
    assert all(0.0 < share < share_out for share, share_out in zip(intake, outside, strict=True))
    assert len(spans) == 2 and all(end > start for start, end in spans)  # the UNet (via the denoiser), the classifier
    assert not model.denoiser._forward_hooks and not model.classifier._forward_pre_hooks  # hooks removed again


def test_covered_counts_overlapping_forward_passes_once() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_speed import covered

    assert covered([]) == 0.0
    assert covered([(0.0, 1.0), (2.0, 3.5)]) == 2.5  # one after the other: the sum
    assert covered([(2.0, 5.0), (0.0, 1.0), (3.0, 4.0), (4.5, 6.0)]) == 5.0  # nested and overlapping: the union


@pytest.mark.slow
def test_thresholds_smoke(tmp_path) -> None:
    """A tiny quick start's validation probabilities rebuilt as training computed them: the current rule refits
    the very thresholds the model saved; every rule is scored on the test records and on bootstrap draws."""
    row = _run("bench_thresholds.py", tmp_path)
    assert row["smoke"] and row["validation_records"] == 8 and row["test_records"] == 8
    assert row["saved_thresholds_match"]["midpoint"]
    assert set(row["rules"]) == {"cut", "midpoint", "f1"}
    assert all(0 <= rule["test_macro_f"] <= 1 and rule["bootstrap_sd"] >= 0 for rule in row["rules"].values())
    assert all(0 <= value <= 1 for value in row["macro_auroc"].values())
    assert sum(row["test_positives"].values()) >= row["test_records"]  # every record has at least one label


def test_timed_digitizer_leaves_the_turned_pages_unet_pass_to_the_forward_timer() -> None:
    """A page the limb-lead check reads turned is denoised again inside ``Digitizer.read``: that UNet pass is a
    forward pass (the forward timer counts it), so the speed benchmark's digitizer time must not count it too."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_speed import _TimedDigitizer

    from derc.inference import Digitizer

    rng = np.random.default_rng(0)
    ink = torch.from_numpy(rng.random((1, 1, 224, 288), dtype=np.float32))  # noise: unreadable, so the turn is tried
    page = np.full((224, 288, 3), 255, np.uint8)
    calls: list[float] = []

    def slow_denoise(turned: np.ndarray) -> torch.Tensor:
        time.sleep(0.5)
        calls.append(1.0)
        return ink

    seconds: list[float] = []
    began = time.perf_counter()
    _TimedDigitizer(Digitizer(), seconds).read(
        ink, fs=500.0, num_samples=5000, leads=list(LEADS), images=[page], denoise=slow_denoise
    )
    elapsed = time.perf_counter() - began
    assert calls == [1.0] and len(seconds) == 1
    assert 0.0 < seconds[0] <= elapsed - 0.5


def test_speed_of_a_given_model_on_given_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bench_speed.py --model M --data D``: a published model timed on a folder's records, with the RSS check."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_speed import trained_model_figures
    from common import random_model, synth
    from conftest import restored_derc_state

    from derc.config import get_preset

    monkeypatch.setenv("DERC_THREADS", "1")
    synth(tmp_path / "data", 2, 5, images=1, dpi=50.0)
    model = random_model(tmp_path / "model", get_preset("tiny"))
    with restored_derc_state(1):
        row = trained_model_figures(str(model), str(tmp_path / "data"), 1, 3)
    assert row["records"] == 1 and row["preset"] == "tiny" and row["device"] == "cpu"
    assert 0 < row["latency_p50_s"] <= row["latency_p95_s"] and 0.0 < row["outside_forward_share"] < 1.0
    assert 0.0 < row["intake_share"] < row["outside_forward_share"]
    assert row["rss_calls"] == 3 and row["rss_end_mb"] > 0 and row["hardware"]["matmul_flops"] > 0
    with pytest.raises(SystemExit, match="no records"):
        trained_model_figures(str(model), str(tmp_path), 1, 0)
