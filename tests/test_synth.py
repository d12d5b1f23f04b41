"""Synthetic ECGs show each label's measurable signs; records are valid WFDB and reproducible."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import wfdb

from derc.labels import LABELS, LEADS
from derc.synth import measure as m
from derc.synth import sample_labels, synthesize, write_dataset
from derc.synth.conditions import TERRITORY
from derc.synth.dataset import write_record

FS = 500
IDX = {name: i for i, name in enumerate(LEADS)}


def _clean(labels, seed, variants=None, fs=FS, noise=False):
    x = synthesize(labels, rng=np.random.default_rng(seed), fs=fs, noise=noise, variants=variants)
    peaks = m.r_peaks(x, fs)
    return x, peaks, m.qrs_bounds(x, fs, peaks)


@pytest.mark.parametrize("fs", [100, 500])
def test_shape_dtype_and_limb_identities(fs):
    x = synthesize(["NORM", "PVC"], rng=np.random.default_rng(0), fs=fs, duration_s=10.0)
    assert x.shape == (10 * fs, 12) and x.dtype == np.float32 and np.isfinite(x).all()
    i, ii = x[:, 0].astype(np.float64), x[:, 1].astype(np.float64)
    np.testing.assert_allclose(x[:, IDX["III"]], ii - i, atol=1e-5)
    np.testing.assert_allclose(x[:, IDX["aVR"]], -(i + ii) / 2, atol=1e-5)
    np.testing.assert_allclose(x[:, IDX["aVL"]], i - ii / 2, atol=1e-5)
    np.testing.assert_allclose(x[:, IDX["aVF"]], ii - i / 2, atol=1e-5)
    assert 0.3 < np.abs(x).max() < 8


def test_normal_intervals_axis_and_t_waves():
    for seed in range(4):
        x, peaks, beats = _clean(["NORM"], seed)
        assert 60 <= m.heart_rate(peaks, FS) <= 100 and m.rr_cv(peaks) < 0.08
        assert 0.06 <= m.qrs_width(x, FS, beats) <= 0.11
        assert 0.11 <= m.pr_interval(x, FS, beats) <= 0.21
        r, s = m.qrs_extremes(x, beats)
        axis = np.degrees(np.arctan2(r[IDX["aVF"]] - s[IDX["aVF"]], r[IDX["I"]] - s[IDX["I"]]))
        assert -35 <= axis <= 95
        assert m.sokolow_lyon(x, beats) < 3.5
        assert np.all(np.abs(m.st_levels(x, FS, beats, after_j=0.04)[[0, 1, 4, 10, 11]]) < 0.1)
        t_peak = np.median([x[b.offset + 60 : b.offset + 220].max(axis=0) for b in beats], axis=0)
        assert np.all(t_peak[[IDX[n] for n in ("I", "II", "V4", "V5", "V6")]] > 0.05)


def test_rate_labels():
    for seed in range(3):
        _, peaks, _ = _clean(["TACHY"], seed, noise=True)
        assert m.heart_rate(peaks, FS) > 100
        _, peaks, _ = _clean(["BRADY"], seed, noise=True)
        assert m.heart_rate(peaks, FS) < 60


def test_af_irregular_sinus_regular_and_flutter():
    af = [m.rr_cv(_clean(["AFIB/AFL"], s, {"AFIB/AFL": "AF"})[1]) for s in range(4)]
    sinus = [m.rr_cv(_clean(["NORM"], s)[1]) for s in range(4)]
    assert min(af) > 0.12 and max(sinus) < 0.06
    x, _peaks, beats = _clean(["AFIB/AFL"], 5, {"AFIB/AFL": "AFL"})
    tail = x[beats[1].onset - 80 : beats[1].onset - 10, IDX["II"]]  # F waves fill the diastole
    assert np.ptp(tail) > 0.08


def test_conduction_defects():
    for seed in range(3):
        x, _, beats = _clean(["CD"], seed, {"CD": "LBBB"})
        assert m.qrs_width(x, FS, beats) >= 0.12
        q = m.q_durations(x, FS, beats)
        assert q[IDX["V6"]] == 0 and q[IDX["I"]] == 0  # no septal q
        x, _, beats = _clean(["CD"], seed, {"CD": "RBBB"})
        assert m.qrs_width(x, FS, beats) >= 0.12
        x, _, beats = _clean(["CD"], seed, {"CD": "AVB1"})
        assert m.pr_interval(x, FS, beats) > 0.2
        x, _, beats = _clean(["CD"], seed, {"CD": "LAFB"})
        r, s = m.qrs_extremes(x, beats)
        assert s[IDX["II"]] > r[IDX["II"]] and r[IDX["aVL"]] > s[IDX["aVL"]]


def test_lvh_voltage():
    for seed in range(4):
        x, _, beats = _clean(["HYP"], seed, {"HYP": "LVH"})
        assert m.sokolow_lyon(x, beats) > 3.5


@pytest.mark.parametrize("territory", sorted(TERRITORY))
def test_acute_mi_st_elevation_with_reciprocal_depression(territory):
    own, recip = TERRITORY[territory]
    for seed in range(3):
        x, _, beats = _clean(["Acute MI"], seed, {"MI": territory})
        st = m.st_levels(x, FS, beats, after_j=0.04)
        own_st = np.array([st[IDX[n]] for n in own])
        assert (own_st >= 0.1).sum() >= 2, (territory, seed, own_st)
        assert np.mean([st[IDX[n]] for n in recip]) < -0.05


@pytest.mark.parametrize("territory", sorted(TERRITORY))
def test_old_mi_pathological_q(territory):
    own, _ = TERRITORY[territory]
    for seed in range(3):
        x, _, beats = _clean(["Old MI"], seed, {"MI": territory})
        q = m.q_durations(x, FS, beats)
        assert (np.array([q[IDX[n]] for n in own]) >= 0.04).sum() >= 2, (territory, seed)
        st = m.st_levels(x, FS, beats, after_j=0.04)
        assert st.max() < 0.15


def test_sttc_depression():
    x, _, beats = _clean(["STTC"], 1, {"STTC": "ST"})
    st = m.st_levels(x, FS, beats, after_j=0.04)
    assert st[[IDX[n] for n in ("I", "II", "aVF", "V4", "V5", "V6")]].min() <= -0.05


def test_premature_beats():
    for label, wide in (("PVC", True), ("PAC", False)):
        for seed in (2, 3, 4):
            x, peaks, _ = _clean([label], seed)
            rr = np.diff(peaks)
            assert rr.min() < 0.8 * np.median(rr)  # premature
            early = int(np.argmin(rr)) + 1
            if early + 1 < len(peaks):  # PVC: full compensatory pause; PAC: less than that
                pair = (peaks[early + 1] - peaks[early - 1]) / np.median(rr)
                assert (pair > 1.9) if wide else (pair < 1.9)
            (beat,) = m.qrs_bounds(x, FS, peaks[early : early + 1], rel=0.15, half_window=0.22)
            assert ((beat.offset - beat.onset) / FS >= 0.12) == wide


def test_label_mix_marginals():
    rng = np.random.default_rng(0)
    draws = [sample_labels(rng) for _ in range(2000)]
    frac = {name: np.mean([name in d for d in draws]) for name in LABELS}
    expected = {"NORM": 0.44, "STTC": 0.24, "CD": 0.22, "HYP": 0.12, "AFIB/AFL": 0.07, "PVC": 0.05}
    for name, p in expected.items():
        assert abs(frac[name] - p) < 0.035, (name, frac[name])
    assert abs(frac["Acute MI"] + frac["Old MI"] - 0.25) < 0.04
    for d in draws:
        assert d and not {"TACHY", "BRADY"} <= set(d)
        assert "AFIB/AFL" not in d or not {"PAC", "TACHY", "BRADY", "NORM"} & set(d)
    multi = np.mean([len(set(d) & {"NORM", "Acute MI", "Old MI", "STTC", "CD", "HYP"}) > 1 for d in draws])
    assert 0.18 < multi < 0.36
    balanced = [sample_labels(rng, balanced=True) for _ in range(600)]
    assert min(np.mean([name in d for d in balanced]) for name in LABELS) > 0.06


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("fs", [100, 500])
def test_dataset_roundtrip_and_determinism(tmp_path, fs):
    names = write_dataset(tmp_path / "a", 3, seed=7, fs=fs, progress=False)
    write_dataset(tmp_path / "b", 3, seed=7, fs=fs, progress=False)
    assert names == ["00000", "00001", "00002"]
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    sig, fields = wfdb.rdsamp(str(tmp_path / "a" / "00001"))
    assert sig.shape == (10 * fs, 12) and fields["fs"] == fs and fields["sig_name"] == list(LEADS)
    assert fields["units"] == ["mV"] * 12
    np.testing.assert_allclose(sig[:, 2], sig[:, 1] - sig[:, 0], atol=1e-9)
    comments = fields["comments"]
    assert comments[0].startswith("Age: ") and comments[1] in ("Sex: Male", "Sex: Female")
    labels = next(c for c in comments if c.startswith("Labels:")).split(":", 1)[1]
    assert all(lab.strip() in LABELS for lab in labels.split(","))
    assert "Image:" in comments


def test_image_writer_is_called(tmp_path):
    def writer(record_path, signal, fs, rng):
        name = record_path.name + "-0.png"
        (record_path.parent / name).write_bytes(b"x")
        assert signal.shape == (10 * fs, 12)
        return [name]

    write_record(tmp_path, "r1", np.random.default_rng(1), image_writer=writer)
    assert "# Image: r1-0.png" in (tmp_path / "r1.hea").read_text()


def test_cli_dataset_passes_the_contract_readers(tmp_path):
    """`python -m derc.synth --images` writes records that helper_code reads as the Challenge's data."""
    import subprocess
    import sys

    import helper_code

    out = tmp_path / "data"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "derc.synth",
            "-o",
            str(out),
            "-n",
            "4",
            "-s",
            "3",
            "--images",
            "2",
            "--dpi",
            "40",
            "-q",
        ],
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    records = helper_code.find_records(str(out))
    assert records == ["00000", "00001", "00002", "00003"]
    for record in records:
        path = str(out / record)
        header = helper_code.load_header(path)
        assert helper_code.get_sampling_frequency(header) == 500
        assert helper_code.get_num_samples(header) == 5000
        assert helper_code.get_signal_names(header) == list(LEADS)
        signal, fields = helper_code.load_signals(path)
        assert signal.shape == (5000, 12) and fields["units"] == ["mV"] * 12
        labels = helper_code.load_labels(path)
        assert labels and all(label in LABELS for label in labels)
        images = helper_code.load_images(path)
        assert [image.size for image in images] == [(round(279.4 * 40 / 25.4), round(215.9 * 40 / 25.4))] * 2
        assert helper_code.get_image_files(path) == [f"{record}-0.png", f"{record}-1.png"]
        age, found = helper_code.get_variable(header, "# Age:")
        assert found and helper_code.is_integer(age)
