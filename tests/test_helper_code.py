"""Behaviour of our helper_code.py (the organizers' helper API)."""

from __future__ import annotations

import numpy as np
import pytest
from harness_model.records import ecg_like, grey_image, write_record
from PIL import Image

import helper_code as hc

HEADER = (
    "00001_lr 3 100 1000 12:34:56 01/02/2003\n"
    "00001_lr.dat 16 1000.0(5)/mV 16 0 -119 1508 0 I\n"
    "00001_lr.dat 16x2:3+4 500/uV 12 7 -55 723 0 II\n"
    "00001_lr.dat 16 200 16 3 0 0 0 V1\n"
    "# Age: 56\n"
    "# Sex: Female\n"
    "# Labels: NORM, STTC\n"
    "# Image: a.png, b.png\n"
)


def test_header_fields() -> None:
    assert hc.get_record_name(HEADER) == "00001_lr"
    assert hc.get_num_signals(HEADER) == 3
    assert hc.get_sampling_frequency(HEADER) == 100.0
    assert hc.get_num_samples(HEADER) == 1000
    assert hc.get_signal_formats(HEADER) == ["16", "16", "16"]
    assert hc.get_adc_gains(HEADER) == [1000.0, 500.0, 200.0]
    assert hc.get_baselines(HEADER) == [5, 7, 3]  # the third falls back to the ADC zero
    assert hc.get_signal_units(HEADER) == ["mV", "uV", "mV"]
    assert hc.get_adc_resolutions(HEADER) == [16, 12, 16]
    assert hc.get_adc_zeros(HEADER) == [0, 7, 3]
    assert hc.get_initial_values(HEADER) == [-119, -55, 0]
    assert hc.get_checksums(HEADER) == [1508, 723, 0]
    assert hc.get_block_sizes(HEADER) == [0, 0, 0]
    assert hc.get_signal_names(HEADER) == ["I", "II", "V1"]
    assert hc.get_signal_files_from_header(HEADER) == ["00001_lr.dat"]
    assert hc.get_labels_from_header(HEADER) == ["NORM", "STTC"]
    assert hc.get_image_files_from_header(HEADER) == ["a.png", "b.png"]


def test_variables() -> None:
    assert hc.get_variable(HEADER, "# Age:") == ("56", True)
    assert hc.get_variable(HEADER, "# Height:") == ("", False)
    assert hc.get_variables(HEADER, "# Labels:") == (["NORM", "STTC"], True)
    assert hc.get_variables(HEADER, "# Weight:") == ([], False)
    assert hc.get_variables("# Labels:\n", "# Labels:") == ([""], True)
    assert hc.substring_labels == "# Labels:" and hc.substring_images == "# Image:"


def test_missing_labels_and_images_raise() -> None:
    bare = HEADER.replace("# Labels: NORM, STTC\n", "").replace("# Image: a.png, b.png\n", "")
    with pytest.raises(Exception, match="No labels available"):
        hc.get_labels_from_header(bare)
    with pytest.raises(Exception, match="No images available"):
        hc.get_image_files_from_header(bare)


def test_find_records_nested_sorted(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for folder, name in [("b", "002"), ("a/x", "010"), ("", "001"), ("a", "003")]:
        write_record(tmp_path / folder, name, ecg_like(50, 100, 2, rng))
    (tmp_path / "notes.txt").write_text("not a record")
    assert hc.find_records(str(tmp_path)) == ["001", "a/003", "a/x/010", "b/002"]
    assert hc.find_records(str(tmp_path / "empty")) == []


def test_load_images_as_stored_and_skip_missing(tmp_path) -> None:
    rng = np.random.default_rng(1)
    images = {"r-0.png": grey_image(10, "RGBA"), "r-1.png": grey_image(20, "L"), "gone.png": grey_image(0)}
    record = str(write_record(tmp_path, "r", ecg_like(50, 100, 2, rng), images=images))
    (tmp_path / "gone.png").unlink()
    loaded = hc.load_images(record)
    assert [image.mode for image in loaded] == ["RGBA", "L"]
    assert all(isinstance(image, Image.Image) for image in loaded)
    for image in loaded:
        image.close()
    assert hc.get_image_files(record) == ["r-0.png", "r-1.png", "gone.png"]


def test_load_images_without_image_line_raises(tmp_path) -> None:
    record = str(write_record(tmp_path, "r", ecg_like(50, 100, 2, np.random.default_rng(2)), image_line=False))
    with pytest.raises(Exception, match="No images available"):
        hc.load_images(record)
    with pytest.raises(Exception, match="No labels available"):
        hc.load_labels(record)


def test_signals_roundtrip_and_missing_files(tmp_path) -> None:
    signal = ecg_like(200, 100, 12, np.random.default_rng(3))
    record = str(write_record(tmp_path / "in", "r", signal, labels=["NORM"]))
    loaded, fields = hc.load_signals(record)
    np.testing.assert_allclose(loaded, signal, atol=1e-9)
    assert fields["fs"] == 100 and fields["sig_name"][0] == "I"
    assert hc.load_labels(record) == ["NORM"]

    out = tmp_path / "out" / "r"
    (tmp_path / "out").mkdir()
    hc.save_header(str(out), hc.load_header(record))
    assert hc.load_signals(str(out)) == (None, None)  # header only: signal file missing
    hc.save_signals(str(out), signal * 0.5, ["# Age: 56", "#Sex: Female"])
    again, _ = hc.load_signals(str(out))
    np.testing.assert_allclose(again, signal * 0.5, atol=1e-3)
    header = hc.save_labels(str(out), ["AFIB/AFL", "PVC"])
    assert header.endswith("# Age: 56\n# Sex: Female\n# Labels: AFIB/AFL, PVC\n")
    assert hc.load_labels(str(out)) == ["AFIB/AFL", "PVC"]


def test_text_io(tmp_path) -> None:
    path = str(tmp_path / "x.txt")
    hc.save_text(path, "a\nb\n")
    assert hc.load_text(path) == "a\nb\n"
    assert hc.get_header_file("a/b") == "a/b.hea" and hc.get_header_file("a/b.hea") == "a/b.hea"


def test_reorder_and_normalize() -> None:
    signal = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert hc.normalize_names(["I", "aVR", "V1"], ["avr", "i", "X"]) == ["aVR", "I"]
    reordered = hc.reorder_signal(signal, ["I", "aVR", "V1"], ["v1", "AVR", "I"])
    np.testing.assert_array_equal(reordered, [[3.0, 2.0, 1.0], [6.0, 5.0, 4.0]])
    assert hc.reorder_signal(signal, ["I", "II", "V1"], ["I", "II", "V1"]) is signal
    with pytest.raises(AssertionError):
        hc.reorder_signal(signal, ["I", "I", "V1"], ["I", "V1"])


def test_number_helpers_and_one_hot() -> None:
    assert hc.is_number("3.5") and not hc.is_number("x") and not hc.is_number(None)
    assert hc.is_integer("4") and hc.is_integer(4.0) and not hc.is_integer(4.5)
    assert hc.is_finite_number(1) and not hc.is_finite_number(float("inf")) and not hc.is_finite_number("a")
    assert hc.is_nan("nan") and not hc.is_nan("1") and not hc.is_nan("NORM")
    assert hc.cast_int_float_unknown(56.0) == 56 and isinstance(hc.cast_int_float_unknown(56.0), int)
    assert hc.cast_int_float_unknown(1.5) == 1.5
    assert hc.cast_int_float_unknown(float("nan")) == "Unknown"
    with pytest.raises(NotImplementedError):
        hc.cast_int_float_unknown("abc")
    encoding = hc.compute_one_hot_encoding([["A", "B"], [], ["C", float("nan")]], ["A", "B", "C", float("nan")])
    np.testing.assert_array_equal(encoding, [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]])
    assert encoding.dtype == np.bool_
