"""Scores pinned on hand-worked cases: F-measure, SNR (with alignment) and the extra metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from harness_model.records import ecg_like, write_record

import evaluate_model
import helper_code as hc


def test_f_measure_hand_worked() -> None:
    labels = [["NORM"], ["NORM", "STTC"], ["CD"], ["STTC"]]
    outputs = [["NORM"], ["STTC", "XYZ"], [], ["NORM"]]  # XYZ is unknown; record 3 predicts nothing
    macro, per_class, classes = hc.compute_f_measure(labels, outputs)
    assert classes == ["CD", "NORM", "STTC"]  # from the reference only
    np.testing.assert_allclose(per_class, [0.0, 2 / 4, 2 / 3])
    assert macro == pytest.approx((0.0 + 0.5 + 2 / 3) / 3)


def test_confusion_matrix_and_nan_classes() -> None:
    A = hc.compute_one_vs_rest_confusion_matrix(
        np.array([[1, 0], [1, 1], [0, 0]]), np.array([[1, 1], [0, 1], [0, 0]]), ["A", "B"]
    )
    np.testing.assert_array_equal(A[0], [[1, 0], [1, 1]])  # [[TP, FP], [FN, TN]]
    np.testing.assert_array_equal(A[1], [[1, 1], [0, 1]])
    empty_class = np.array([A[0], [[0, 0], [0, 3]]])
    macro, per_class = hc._f_measures_from_confusion(empty_class)
    assert per_class[0] == pytest.approx(2 / 3) and math.isnan(per_class[1])
    assert macro == pytest.approx(2 / 3)  # the NaN class is ignored
    macro, per_class = hc._f_measures_from_confusion(np.array([[[0, 0], [0, 3]]]))
    assert math.isnan(macro) and math.isnan(per_class[0])


def test_snr_hand_worked() -> None:
    ref = np.array([1.0, -1.0, 2.0, -2.0])
    snr, p_signal, p_noise = hc.compute_snr(ref, [1.0, -1.0, 2.0, -1.0])
    assert (p_signal, p_noise) == (2.5, 0.25) and snr == pytest.approx(10.0)
    # One non-finite estimated sample: 3 of 4 reference samples kept.
    snr, _, _ = hc.compute_snr(ref, [np.nan, -1.0, 2.0, -1.0])
    assert snr == pytest.approx(10 * math.log10(3 / (1 / 3)) * 3 / 4)
    # A shorter estimate is padded with NaN.
    assert hc.compute_snr(ref, [1.0, -1.0, 1.0])[0] == pytest.approx(10 * math.log10(2 / (1 / 3)) * 3 / 4)
    # keep_nans=False: non-finite estimate samples count as zeros, no penalty factor.
    assert hc.compute_snr(ref, [np.nan, -1.0, 2.0, -1.0], keep_nans=False)[0] == pytest.approx(10 * math.log10(5))
    # Median noise power.
    assert hc.compute_snr(ref, [0.0, 0.0, 2.0, -1.0], noise_median=True)[0] == pytest.approx(10 * math.log10(2.5 / 1.0))


def test_snr_edge_cases() -> None:
    ref = np.array([1.0, -1.0, 2.0, -2.0])
    assert hc.compute_snr(ref, np.full(4, np.nan))[0] == 0.0  # nothing kept while the reference is finite
    assert math.isnan(hc.compute_snr(np.full(4, np.nan), ref)[0])  # no finite reference
    assert math.isnan(hc.compute_snr(ref, ref)[0])  # zero noise power: non-positive power gives NaN
    assert math.isnan(hc.compute_snr(np.zeros(4), ref)[0])  # zero signal power


def test_alignment_recovers_shift() -> None:
    fs = 100
    ref = ecg_like(600, fs, 1, np.random.default_rng(4))[:, 0]
    lag, offset = 12, 0.2
    est = np.concatenate((np.full(lag, ref[0]), ref[:-lag])) + offset  # est lags ref by 12 samples, +0.2 mV
    shifted, shift_samples, shift_mv = hc.align_signals(ref, est, num_quant_levels=256)
    step = (np.max(est) - np.min(ref)) / 255
    assert shift_samples == lag
    assert abs(shift_mv - offset) <= step
    assert np.isnan(shifted[-lag:]).all() and shifted.size == ref.size
    before = hc.compute_snr(ref, est)[0]
    after = hc.compute_snr(ref, shifted)[0]
    assert before < 3 and after > 20


def test_alignment_negative_shift_pads_front() -> None:
    ref = ecg_like(400, 100, 1, np.random.default_rng(5))[:, 0]
    est = np.concatenate((ref[7:], np.full(7, ref[-1])))  # est leads ref by 7 samples
    shifted, shift_samples, _ = hc.align_signals(ref, est, num_quant_levels=256)
    assert shift_samples == -7 and np.isnan(shifted[:7]).all() and shifted.size == ref.size + 7


def test_convert_and_correlate() -> None:
    image = hc.convert_signal(np.array([0.0, 0.5, np.nan, 1.0]), 3, 0.0, 1.0, 5)
    expected = np.zeros((3, 5))
    expected[[0, 1, 2], [0, 1, 3]] = 1
    np.testing.assert_array_equal(image, expected)
    corr = hc.fft_correlate(expected, expected)
    assert corr.shape == (5, 9) and np.unravel_index(np.argmax(corr), corr.shape) == (2, 4)


def test_extra_metrics() -> None:
    ref = ecg_like(300, 100, 1, np.random.default_rng(6))[:, 0]
    assert hc.compute_ks_metric(ref, ref) == pytest.approx(1.0)
    assert hc.compute_asci_metric(ref, ref) == 1.0
    assert hc.compute_asci_metric(ref, ref + 10) == -1.0
    assert hc.compute_weighted_absolute_difference(ref, ref, 100) == 0.0
    assert hc.compute_weighted_absolute_difference(ref, ref + 0.5, 100) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        hc.compute_asci_metric(ref, ref, beta=0)
    ks = hc.compute_ks_metric(np.array([1.0, 1.0, 1.0, 1.0]), np.array([4.0, 0.0, 0.0, 0.0]))
    assert ks == pytest.approx(1 - 0.75)


def _even(signal: np.ndarray) -> np.ndarray:
    return np.round(signal / 0.002) * 0.002  # halves stay exact at 1000 ADC units per mV


def test_evaluate_folders_hand_worked(tmp_path) -> None:
    rng = np.random.default_rng(7)
    ref_a = _even(ecg_like(300, 100, 12, rng))
    ref_b = _even(ecg_like(300, 100, 12, rng))
    write_record(tmp_path / "ref", "a", ref_a, labels=["NORM", "STTC"])
    write_record(tmp_path / "ref" / "sub", "b", ref_b, labels=["CD"])
    write_record(tmp_path / "ref", "c", ref_a, labels=[])  # no labels: not scored for classification
    write_record(tmp_path / "est", "a", ref_a * 0.5, labels=["NORM"])  # SNR 10*log10(4) on every lead
    (tmp_path / "est" / "sub").mkdir()
    header_b = hc.load_header(str(tmp_path / "ref" / "sub" / "b")).replace("# Labels: CD\n", "")
    hc.save_text(str(tmp_path / "est" / "sub" / "b.hea"), header_b)  # header only: no signal, no labels
    write_record(tmp_path / "est", "c", ref_a, labels=["CD"])
    scores = evaluate_model.compute_scores(str(tmp_path / "ref"), str(tmp_path / "est"), no_shift=True)
    # a: 6.0206 dB x 12 leads, sub/b: no output signal -> 0 x 12 leads, c: perfect -> NaN (ignored).
    assert scores["means"]["SNR"] == pytest.approx(10 * math.log10(4) / 2, abs=1e-6)
    assert scores["classes"] == ["CD", "NORM", "STTC"]
    np.testing.assert_allclose(scores["per_class"], [0.0, 1.0, 0.0])
    assert scores["f_measure"] == pytest.approx(1 / 3)
    text = evaluate_model.format_scores(scores)
    assert text == "SNR: 3.010\nF-measure: 0.333\n"
    assert evaluate_model.format_f_measure_table(scores).splitlines()[1:] == [
        "CD,0.000000",
        "NORM,1.000000",
        "STTC,0.000000",
    ]
    assert evaluate_model.evaluate_model(str(tmp_path / "ref"), str(tmp_path / "est"), True)[0] == pytest.approx(
        scores["means"]["SNR"]
    )


def test_evaluate_without_outputs_is_nan(tmp_path) -> None:
    write_record(tmp_path / "ref", "a", _even(ecg_like(200, 100, 2, np.random.default_rng(8))), labels=["NORM"])
    hc.save_text(str(tmp_path / "a.hea"), "")  # stray file outside the folders is ignored
    (tmp_path / "est").mkdir()
    scores = evaluate_model.compute_scores(str(tmp_path / "ref"), str(tmp_path / "est"))
    assert evaluate_model.format_scores(scores, extra_scores=True) == (
        "SNR: nan\nSNR median: nan\nKS metric: nan\nASCI metric: nan\n"
        "Weighted absolute difference metric: nan\nF-measure: nan\n"
    )
    with pytest.raises(FileNotFoundError, match="No records found"):
        evaluate_model.compute_scores(str(tmp_path / "est"), str(tmp_path / "est"))
