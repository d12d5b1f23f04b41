"""PTB-XL -> Challenge records on a small PTB-XL-shaped fixture built here (CSV rows + WFDB records)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from harness_model.records import ecg_like, grey_image
from PIL import Image

import helper_code as hc
from derc import ptbxl

STATEMENTS = {  # code: (diagnostic, diagnostic_class)
    "NORM": (1.0, "NORM"),
    "IMI": (1.0, "MI"),
    "ASMI": (1.0, "MI"),
    "NDT": (1.0, "STTC"),
    "LAFB": (1.0, "CD"),
    "LVH": (1.0, "HYP"),
    "PAC": (None, None),
    "PVC": (None, None),
    "AFIB": (None, None),
    "AFLT": (None, None),
    "STACH": (None, None),
    "SVTAC": (None, None),
    "PSVT": (None, None),
    "SBRAD": (None, None),
    "SR": (None, None),
}
# ecg_id: (scp_codes, 12SL statements, expected labels with PTB-XL+)
CASES = {
    1: ({"NORM": 100.0, "SR": 0.0}, ["SR", "NORM"], ["NORM"]),
    2: ({"IMI": 100.0}, ["SR", "ACUTEIMI"], ["Acute MI"]),
    3: ({"ASMI": 50.0}, ["ASMI_OLD"], ["Old MI"]),
    4: ({"NDT": 100.0, "LAFB": 100.0, "LVH": 50.0}, [], ["STTC", "CD", "HYP"]),
    5: ({"PAC": 0.0, "PVC": 100.0, "SR": 0.0}, [], ["PAC", "PVC"]),
    6: ({"AFLT": 100.0}, [], ["AFIB/AFL"]),
    7: ({"AFIB": 100.0, "STACH": 0.0}, [], ["AFIB/AFL", "TACHY"]),
    8: ({"SVTAC": 100.0}, [], ["TACHY"]),
    9: ({"PSVT": 100.0, "NORM": 80.0}, [], ["NORM", "TACHY"]),
    10: ({"SBRAD": 100.0, "IMI": 15.0}, ["STEMI_ANT"], ["Acute MI", "BRADY"]),
    11: ({"PVC": -1.0, "NORM": 100.0}, [], ["NORM"]),  # negative likelihood does not count
}
MAPPING = [(821, "ACUTEIMI"), (902, "STEMI_ANT"), (160, "ASMI_OLD"), (1, "SR")]


def _build(tmp_path: Path) -> Path:
    root = tmp_path / "ptbxl"
    rng = np.random.default_rng(5)
    rows = []
    for ecg_id, (codes, _, _) in CASES.items():
        sub = f"{(ecg_id // 1000) * 1000:05d}"
        for fs, folder, suffix in [(500, "records500", "hr"), (100, "records100", "lr")]:
            path = root / folder / sub
            path.mkdir(parents=True, exist_ok=True)
            signal = ecg_like(fs, fs, 12, rng)
            wfdb.wrsamp(
                f"{ecg_id:05d}_{suffix}",
                fs=fs,
                units=["mV"] * 12,
                sig_name=["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"],
                p_signal=signal,
                fmt=["16"] * 12,
                adc_gain=[1000.0] * 12,
                baseline=[0] * 12,
                write_dir=str(path),
            )
        rows.append(
            {
                "ecg_id": ecg_id,
                "patient_id": 100 + ecg_id,
                "age": 50.0 + ecg_id if ecg_id != 3 else np.nan,
                "sex": ecg_id % 2,
                "height": np.nan,
                "weight": 70.5,
                "recording_date": "1984-11-09 09:17:34",
                "scp_codes": repr(codes),
                "strat_fold": 1,
                "filename_lr": f"records100/{sub}/{ecg_id:05d}_lr",
                "filename_hr": f"records500/{sub}/{ecg_id:05d}_hr",
            }
        )
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    statements = pd.DataFrame(
        [
            {"": code, "description": code.lower(), "diagnostic": d, "diagnostic_class": c}
            for code, (d, c) in STATEMENTS.items()
        ]
    )
    statements.to_csv(root / "scp_statements.csv", index=False)
    plus = tmp_path / "ptbxl_plus" / "labels"
    (plus / "mapping").mkdir(parents=True)
    pd.DataFrame([{"ecg_id": i, "statements": repr(case[1])} for i, case in CASES.items()]).to_csv(
        plus / "12sl_statements.csv", index=False
    )
    pd.DataFrame(MAPPING, columns=["StatementNumber", "Acronym"]).to_csv(plus / "mapping" / "12slv23ToSNOMED.csv")
    return root


def test_labels_from_codes(tmp_path) -> None:
    root = _build(tmp_path)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records = ptbxl.prepare_ptbxl(root, out, tmp_path / "ptbxl_plus")
    assert records == [f"00000/{i:05d}_hr" for i in CASES]
    assert hc.find_records(str(out)) == records
    for ecg_id, (_, _, expected) in CASES.items():
        assert hc.load_labels(str(out / f"00000/{ecg_id:05d}_hr")) == expected, ecg_id
    header = hc.load_header(str(out / "00000/00003_hr"))
    assert header.split("\n")[0].endswith(" 09:17:34 09/11/1984")
    assert hc.get_variable(header, "# Age:") == ("Unknown", True)
    assert hc.get_variable(header, "# Sex:") == ("Female", True)
    assert hc.get_variable(header, "# Weight:") == ("70.5", True)
    assert hc.get_variable(hc.load_header(str(out / "00000/00002_hr")), "# Age:") == ("52", True)
    signal, fields = hc.load_signals(str(out / "00000/00001_hr"))
    original, _ = wfdb.rdsamp(str(root / "records500/00000/00001_hr"))
    np.testing.assert_array_equal(signal, original)
    assert fields["fs"] == 500
    with pytest.raises(Exception, match="No images available"):
        hc.load_images(str(out / "00000/00001_hr"))


def test_without_plus_every_mi_is_old(tmp_path) -> None:
    root = _build(tmp_path)
    with pytest.warns(UserWarning, match="Acute MI cannot be derived"):
        records = ptbxl.prepare_ptbxl(root, tmp_path / "out", None, fs=100, limit=3)
    assert records == ["00000/00001_lr", "00000/00002_lr", "00000/00003_lr"]
    assert hc.load_labels(str(tmp_path / "out/00000/00002_lr")) == ["Old MI"]
    assert hc.get_sampling_frequency(hc.load_header(str(tmp_path / "out/00000/00002_lr"))) == 100


def test_images_copied_and_listed(tmp_path) -> None:
    root = _build(tmp_path)
    images = tmp_path / "images" / "x"
    images.mkdir(parents=True)
    for name in ["00001_hr-0.png", "00001_hr-1.png", "00004_hr-0.jpg", "00010_hr-0.png"]:
        Image.fromarray(grey_image(100)).save(images / name)
    (images / "00001_hr.txt").write_text("not an image")
    code = ptbxl.main(
        [
            "-i",
            str(root),
            "-p",
            str(tmp_path / "ptbxl_plus"),
            "-o",
            str(tmp_path / "out"),
            "--images",
            str(tmp_path / "images"),
            "--limit",
            "5",
        ]
    )
    assert code == 0
    record = str(tmp_path / "out/00000/00001_hr")
    assert hc.get_image_files(record) == ["00001_hr-0.png", "00001_hr-1.png"]
    loaded = hc.load_images(record)
    assert len(loaded) == 2
    for image in loaded:
        image.close()
    assert hc.get_image_files(str(tmp_path / "out/00000/00004_hr")) == ["00004_hr-0.jpg"]
    assert not (tmp_path / "out/00000/00010_hr.hea").exists()


def test_derive_labels_unit() -> None:
    superclasses = {"IMI": "MI", "NORM": "NORM"}
    assert ptbxl.derive_labels({"IMI": 0.0}, superclasses, ["X"], {"X"}) == ["Acute MI"]
    assert ptbxl.derive_labels({"IMI": 0.0}, superclasses, [], {"X"}) == ["Old MI"]
    assert ptbxl.derive_labels({}, superclasses, ["X"], {"X"}) == ["Acute MI"]
    assert ptbxl.parse_statements("['SR', 'X']") == ["SR", "X"] and ptbxl.parse_statements(float("nan")) == []
