#!/usr/bin/env python
"""Score model outputs: python evaluate_model.py -d DATA -o OUTPUTS [-s SCORES] [-n] [-x] [-ta SNR_TABLE] [-tb F_TABLE]

``DATA`` holds the reference records (signals and ``# Labels:``), ``OUTPUTS`` what run_model.py wrote.
Prints ``SNR: x.xxx`` and ``F-measure: x.xxx``; ``-s`` also writes that text to a file, ``-n`` turns the
alignment of the digitized signals off, ``-x`` adds the extra digitization metrics, ``-ta`` writes the
SNR of every (record, channel) pair and ``-tb`` the F-measure of every class (CSV).
"""

import argparse
import os
import sys

import numpy as np

from helper_code import (
    align_signals,
    compute_asci_metric,
    compute_f_measure,
    compute_ks_metric,
    compute_snr,
    compute_weighted_absolute_difference,
    find_records,
    load_labels,
    load_signals,
    reorder_signal,
    save_text,
)

MAX_VERTICAL_SHIFT_MV = 1.0
NUM_QUANT_LEVELS = 2**8
EXTRA_METRICS = ("SNR median", "KS metric", "ASCI metric", "Weighted absolute difference metric")


def get_parser():
    parser = argparse.ArgumentParser(description="Evaluate the Challenge models.")
    parser.add_argument("-d", "--folder_ref", type=str, required=True)
    parser.add_argument("-o", "--folder_est", type=str, required=True)
    parser.add_argument("-n", "--no_shift", action="store_true")
    parser.add_argument("-x", "--extra_scores", action="store_true")
    parser.add_argument("-s", "--score_file", type=str, required=False)
    parser.add_argument("-ta", "--snr_table_file", type=str, required=False)
    parser.add_argument("-tb", "--f_measure_table_file", type=str, required=False)
    return parser


def load_record_pair(record_ref, record_est):
    """(reference signal, estimated signal in reference channel order, reference fields, has output)."""
    signal_ref, fields_ref = load_signals(record_ref)
    if signal_ref is None:
        return None, None, None, False
    has_header = os.path.isfile(record_est + ".hea")
    signal_est, fields_est = load_signals(record_est) if has_header else (None, None)
    if signal_est is None:
        return signal_ref, np.full(np.shape(signal_ref), np.nan), fields_ref, False
    assert fields_ref["fs"] == fields_est["fs"]
    assert fields_ref["units"] == fields_est["units"]
    assert len(set(fields_ref["units"])) == 1 and fields_ref["units"][0] == "mV"
    signal_est = reorder_signal(signal_est, fields_est["sig_name"], fields_ref["sig_name"])
    return signal_ref, signal_est, fields_ref, True


def aligned_estimate(x_ref, x_est, sampling_frequency, no_shift):
    """The estimate shifted onto the reference, when the shift is within 0.5 s and 1 mV."""
    if no_shift or not np.any(np.isfinite(x_est)):  # an all-NaN estimate stays all NaN when shifted
        return x_est
    shifted, shift_samples, shift_mv = align_signals(x_ref, x_est, num_quant_levels=NUM_QUANT_LEVELS)
    if abs(shift_samples) <= np.round(0.5 * sampling_frequency) and abs(shift_mv) <= MAX_VERTICAL_SHIFT_MV:
        return shifted
    return x_est


def channel_metrics(x_ref, x_est, sampling_frequency, extra_scores):
    metrics = {"SNR": compute_snr(x_ref, x_est)[0]}
    if extra_scores:
        metrics["SNR median"] = compute_snr(x_ref, x_est, noise_median=True)[0]
        metrics["KS metric"] = compute_ks_metric(x_ref, x_est)
        metrics["ASCI metric"] = compute_asci_metric(x_ref, x_est)
        metrics["Weighted absolute difference metric"] = compute_weighted_absolute_difference(
            x_ref, x_est, sampling_frequency
        )
    return metrics


def digitization_scores(folder_ref, folder_est, records, no_shift=False, extra_scores=False):
    """({(record, channel): {metric: value}}, number of records with an output signal)."""
    table = {}
    completed = 0
    for record in records:
        signal_ref, signal_est, fields, has_output = load_record_pair(
            os.path.join(folder_ref, record), os.path.join(folder_est, record)
        )
        if signal_ref is None:
            continue
        completed += int(has_output)
        fs = fields["fs"]
        for j, channel in enumerate(fields["sig_name"]):
            x_est = aligned_estimate(signal_ref[:, j], signal_est[:, j], fs, no_shift)
            table[(record, channel)] = channel_metrics(signal_ref[:, j], x_est, fs, extra_scores)
    return table, completed


def _labels_or_empty(record):
    try:
        return load_labels(record)
    except Exception:
        return []


def classification_scores(folder_ref, folder_est, records):
    """(macro F-measure, per-class F-measures, classes); NaN when no output has labels."""
    labels_ref, labels_est = [], []
    completed = 0
    for record in records:
        label_ref = _labels_or_empty(os.path.join(folder_ref, record))
        if not any(label for label in label_ref):
            continue
        label_est = _labels_or_empty(os.path.join(folder_est, record))
        completed += int(any(label for label in label_est))
        labels_ref.append(label_ref)
        labels_est.append(label_est)
    if completed == 0:
        return float("nan"), np.zeros(0), []
    return compute_f_measure(labels_ref, labels_est)


def _nanmean(values):
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if values.size and not np.all(np.isnan(values)) else float("nan")


def compute_scores(folder_ref, folder_est, no_shift=False, extra_scores=False):
    """All scores and tables as a dict."""
    records = find_records(folder_ref)
    if len(records) == 0:
        raise FileNotFoundError("No records found.")
    table, completed = digitization_scores(folder_ref, folder_est, records, no_shift, extra_scores)
    means = {}
    for name in ("SNR", *EXTRA_METRICS):
        values = [metrics[name] for metrics in table.values() if name in metrics]
        means[name] = _nanmean(values) if completed > 0 and values else float("nan")
    f_measure, per_class, classes = classification_scores(folder_ref, folder_est, records)
    return {"means": means, "snr_table": table, "f_measure": f_measure, "per_class": per_class, "classes": classes}


def evaluate_model(folder_ref, folder_est, no_shift=False, extra_scores=False):
    """(SNR, SNR median, KS, ASCI, weighted absolute difference, F-measure), as the organizers' script."""
    scores = compute_scores(folder_ref, folder_est, no_shift, extra_scores)
    means = scores["means"]
    return (means["SNR"], *(means[name] for name in EXTRA_METRICS), scores["f_measure"])


def format_scores(scores, extra_scores=False):
    lines = [f"SNR: {scores['means']['SNR']:.3f}"]
    if extra_scores:
        lines += [f"{name}: {scores['means'][name]:.3f}" for name in EXTRA_METRICS]
    lines.append(f"F-measure: {scores['f_measure']:.3f}")
    return "\n".join(lines) + "\n"


def format_snr_table(scores):
    rows = ["record,channel,snr"]
    rows += [f"{record},{channel},{m['SNR']:.6f}" for (record, channel), m in scores["snr_table"].items()]
    return "\n".join(rows) + "\n"


def format_f_measure_table(scores):
    rows = ["class,f_measure"]
    rows += [f"{name},{value:.6f}" for name, value in zip(scores["classes"], scores["per_class"])]
    return "\n".join(rows) + "\n"


def run(args):
    scores = compute_scores(args.folder_ref, args.folder_est, args.no_shift, args.extra_scores)
    output_string = format_scores(scores, args.extra_scores)
    print(output_string, end="")
    if args.score_file:
        save_text(args.score_file, output_string)
    if args.snr_table_file:
        save_text(args.snr_table_file, format_snr_table(scores))
    if args.f_measure_table_file:
        save_text(args.f_measure_table_file, format_f_measure_table(scores))


if __name__ == "__main__":
    run(get_parser().parse_args(sys.argv[1:]))
