"""The four Challenge scripts run as subprocesses on a small nested data folder with a tiny real model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from harness_model.records import ecg_like, grey_image, write_record

import helper_code as hc

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("helper_code.py", "train_model.py", "run_model.py", "evaluate_model.py")


def _run(workdir: Path, *args: str, signal: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_SIGNAL": "1" if signal else "0", "PYTHONPATH": str(workdir)}
    return subprocess.run(
        [sys.executable, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _hidden_copy(ref_folder: Path, out_folder: Path) -> None:
    """Hidden-test style copy: header without labels, checksum/initial-value fields blanked, no signal files."""
    for record in hc.find_records(str(ref_folder)):
        source = ref_folder / record
        target = out_folder / record
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = hc.load_header(str(source)).split("\n")
        num_signals = hc.get_num_signals(lines[0])
        for i in range(1, num_signals + 1):
            fields = lines[i].split(" ")
            fields[5] = fields[6] = ""
            lines[i] = " ".join(fields)
        header = "\n".join(line for line in lines if not line.startswith(hc.substring_labels))
        hc.save_text(str(target) + ".hea", header)
        for image in hc.get_variables(header, hc.substring_images)[0]:
            if (source.parent / image).is_file():
                shutil.copy2(source.parent / image, target.parent / image)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("harness")
    for name in SCRIPTS:
        shutil.copy2(ROOT / name, work / name)
    shutil.copy2(ROOT / "tests" / "harness_model" / "team_code.py", work / "team_code.py")
    rng = np.random.default_rng(11)
    train, ref = work / "train", work / "ref"
    for folder, name, level, labels in [
        (train, "t1", 40, ["NORM"]),
        (train / "sub", "t2", 200, ["STTC"]),
        (train / "sub" / "deeper", "t3", 45, ["NORM", "CD"]),
    ]:
        write_record(
            folder, name, ecg_like(200, 100, 12, rng), labels=labels, images={f"{name}-0.png": grey_image(level)}
        )
    write_record(ref, "a", ecg_like(200, 100, 12, rng), labels=["NORM"], images={"a-0.png": grey_image(41, "RGBA")})
    write_record(
        ref / "sub", "b", ecg_like(200, 100, 12, rng), labels=["STTC", "CD"], images={"b-0.png": grey_image(190)}
    )
    write_record(ref / "sub", "c", ecg_like(200, 100, 12, rng), labels=["CD"], images={"c-0.png": grey_image(45, "L")})
    (ref / "sub" / "c-0.png").unlink()  # listed in the header but missing: the model raises on this record
    _hidden_copy(ref, work / "test")
    result = _run(work, "train_model.py", "-d", "train", "-m", "model", "-v")
    assert result.returncode == 0, result.stderr
    assert "trained on 3 records" in result.stdout
    return work


def test_run_without_f_propagates_the_failure(workdir: Path) -> None:
    result = _run(workdir, "run_model.py", "-d", "test", "-m", "model", "-o", "out_nof")
    assert result.returncode != 0
    assert "record test/sub/c: no readable image" in result.stderr


def test_classification_only_headers_byte_for_byte(workdir: Path) -> None:
    result = _run(workdir, "run_model.py", "-d", "test", "-m", "model", "-o", "out_cls", "-f", "-v", signal=False)
    assert result.returncode == 0, result.stderr
    assert "sub/c failed: ValueError: record test/sub/c: no readable image" in result.stderr
    assert [line.split(": ")[-1] for line in result.stdout.splitlines() if line.startswith("- ")] == [
        "a...",
        "sub/b...",
        "sub/c...",
    ]
    expected = {"a": "# Labels: NORM\n", "sub/b": "# Labels: STTC\n", "sub/c": ""}
    for record, labels_line in expected.items():
        source = (workdir / "test" / f"{record}.hea").read_bytes()
        assert (workdir / "out_cls" / f"{record}.hea").read_bytes() == source + labels_line.encode()
    assert sorted(p.name for p in (workdir / "out_cls").rglob("*") if p.is_file()) == ["a.hea", "b.hea", "c.hea"]

    scores = _run(workdir, "evaluate_model.py", "-d", "ref", "-o", "out_cls", "-s", "scores.txt", "-tb", "f.csv")
    assert scores.returncode == 0, scores.stderr
    # classes CD, NORM, STTC: CD 0 TP / 2 FN -> 0; NORM 1 TP -> 1; STTC 1 TP -> 1.
    assert scores.stdout == "SNR: nan\nF-measure: 0.667\n"
    assert (workdir / "scores.txt").read_text() == scores.stdout
    assert (workdir / "f.csv").read_text() == "class,f_measure\nCD,0.000000\nNORM,1.000000\nSTTC,1.000000\n"


def test_signals_written_and_scored(workdir: Path) -> None:
    result = _run(workdir, "run_model.py", "-d", "test", "-m", "model", "-o", "out_sig", "-f")
    assert result.returncode == 0, result.stderr
    header = hc.load_header(str(workdir / "out_sig" / "a"))
    assert header.endswith("# Age: 56\n# Sex: Female\n# Image: a-0.png\n# Labels: NORM\n")
    assert hc.get_signal_names(header) == hc.get_signal_names(hc.load_header(str(workdir / "ref" / "a")))
    signal, fields = hc.load_signals(str(workdir / "out_sig" / "sub" / "b"))
    assert signal.shape == (200, 12) and not signal.any() and fields["units"] == ["mV"] * 12
    assert hc.load_signals(str(workdir / "out_sig" / "sub" / "c")) == (None, None)

    plain = _run(workdir, "evaluate_model.py", "-d", "ref", "-o", "out_sig", "-n", "-x", "-ta", "snr.csv")
    assert plain.returncode == 0, plain.stderr
    # Zero estimates give 0 dB, sub/c (no output) gives 0 dB too; -x adds four lines.
    lines = plain.stdout.splitlines()
    assert [lines[0], lines[-1]] == ["SNR: 0.000", "F-measure: 0.667"]
    names = [line.split(":")[0] for line in lines]
    assert names == [
        "SNR",
        "SNR median",
        "KS metric",
        "ASCI metric",
        "Weighted absolute difference metric",
        "F-measure",
    ]
    rows = (workdir / "snr.csv").read_text().splitlines()
    assert rows[0] == "record,channel,snr" and len(rows) == 1 + 3 * 12 and rows[1] == "a,I,0.000000"


def _single_record(folder: Path, **kwargs) -> None:
    write_record(folder, "r", ecg_like(100, 100, 12, np.random.default_rng(3)), **kwargs)


def test_empty_data_folder(workdir: Path) -> None:
    (workdir / "empty").mkdir(exist_ok=True)
    result = _run(workdir, "run_model.py", "-d", "empty", "-m", "model", "-o", "out_empty")
    assert result.returncode != 0 and "No data were provided." in result.stderr


def test_header_without_image_line(workdir: Path) -> None:
    _single_record(workdir / "noimage", image_line=False)
    result = _run(workdir, "run_model.py", "-d", "noimage", "-m", "model", "-o", "out_noimage")
    assert result.returncode != 0 and "No images available" in result.stderr


def test_non_image_file_named_as_image(workdir: Path) -> None:
    _single_record(workdir / "notimage", images={"r-0.png": b"this is not a PNG"})
    result = _run(workdir, "run_model.py", "-d", "notimage", "-m", "model", "-o", "out_notimage")
    assert result.returncode != 0 and "UnidentifiedImageError" in result.stderr and "r-0.png" in result.stderr


def test_missing_model_folder(workdir: Path) -> None:
    result = _run(workdir, "run_model.py", "-d", "test", "-m", "no_such_model", "-o", "out_nomodel")
    assert result.returncode != 0 and "model folder no_such_model does not exist" in result.stderr
    assert not (workdir / "out_nomodel").exists()
