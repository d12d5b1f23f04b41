#!/usr/bin/env python
"""Challenge 2024 helper functions (our implementation of the organizers' helper API).

The organizers replace this file with their own; every name, parameter, return value and error here
mirrors theirs so that ``team_code.py`` behaves the same with either version.
"""

import os

import numpy as np
import wfdb

# scipy is imported inside the metric functions: run_model.py starts faster without it.

substring_labels = "# Labels:"
substring_images = "# Image:"

# --------------------------------------------------------------------------------------------------
# Challenge data I/O


def find_records(folder):
    """Record ids (header paths relative to ``folder`` without ``.hea``), recursive and sorted."""
    records = set()
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if os.path.splitext(name)[1] == ".hea":
                records.add(os.path.relpath(os.path.join(root, name), folder)[: -len(".hea")])
    return sorted(records)


def load_header(record):
    return load_text(get_header_file(record))


def load_signals(record):
    """``(signal, fields)`` from ``wfdb.rdsamp``, or ``(None, None)`` when signal files are missing."""
    signal_files = get_signal_files(record)
    folder = os.path.split(record)[0]
    present = all(os.path.isfile(os.path.join(folder, name)) for name in signal_files)
    if signal_files and present:
        return wfdb.rdsamp(record)
    return None, None


def load_images(record):
    """PIL images named in the header's ``# Image:`` line, as stored; missing files are skipped."""
    from PIL import Image

    folder = os.path.split(record)[0]
    images = []
    for name in get_image_files(record):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            images.append(Image.open(path))
    return images


def load_labels(record):
    return get_labels_from_header(load_header(record))


def save_header(record, header):
    save_text(get_header_file(record), header)


def save_signals(record, signal, comments=list()):
    """Write ``signal`` (samples x channels, physical units) with the formats of the record's header."""
    header = load_header(record)
    folder, name = os.path.split(record)
    cleaned = [comment.replace("#", "").strip() for comment in comments]
    wfdb.wrsamp(
        name,
        fs=get_sampling_frequency(header),
        units=get_signal_units(header),
        sig_name=get_signal_names(header),
        p_signal=signal,
        fmt=get_signal_formats(header),
        adc_gain=get_adc_gains(header),
        baseline=get_baselines(header),
        comments=cleaned,
        write_dir=folder,
    )


def save_labels(record, labels):
    """Append one ``# Labels: A, B`` line to the record's header; return the new header."""
    header_file = get_header_file(record)
    header = load_text(header_file) + substring_labels + " " + ", ".join(labels) + "\n"
    save_text(header_file, header)
    return header


# --------------------------------------------------------------------------------------------------
# Text and header helpers


def load_text(filename):
    with open(filename) as handle:
        return handle.read()


def save_text(filename, string):
    with open(filename, "w") as handle:
        handle.write(string)


def get_variable(string, variable_name):
    """``(value, found)`` for the last line starting with ``variable_name``; ``('', False)`` if none."""
    value, found = "", False
    for line in string.split("\n"):
        if line.startswith(variable_name):
            value, found = line[len(variable_name) :].strip(), True
    return value, found


def get_variables(string, variable_name, sep=","):
    """``(values, found)``: the stripped ``sep``-separated values of every line starting with the name."""
    values, found = [], False
    for line in string.split("\n"):
        if line.startswith(variable_name):
            values += [value.strip() for value in line[len(variable_name) :].strip().split(sep)]
            found = True
    return values, found


def get_signal_files_from_header(string):
    signal_files = []
    num_channels = 0
    for i, line in enumerate(string.split("\n")):
        fields = [field.strip() for field in line.split(" ")]
        if i == 0 and not line.startswith("#"):
            num_channels = int(fields[1])
        elif i <= num_channels and not line.startswith("#"):
            if fields[0] not in signal_files:
                signal_files.append(fields[0])
        else:
            break
    return signal_files


def get_image_files_from_header(string):
    images, found = get_variables(string, substring_images)
    if not found:
        raise Exception("No images available: did you forget to generate or include the images?")
    return images


def get_labels_from_header(string):
    labels, found = get_variables(string, substring_labels)
    if not found:
        raise Exception(
            "No labels available: are you trying to load the labels from the held-out data, or did you forget to "
            "prepare the data to include the labels?"
        )
    return labels


def get_header_file(record):
    return record if record.endswith(".hea") else record + ".hea"


def get_signal_files(record):
    return get_signal_files_from_header(load_text(get_header_file(record)))


def get_image_files(record):
    return get_image_files_from_header(load_text(get_header_file(record)))


# --------------------------------------------------------------------------------------------------
# WFDB header fields


def _record_field(string, index):
    return string.split("\n")[0].split(" ")[index]


def _signal_fields(string, index):
    """Field ``index`` (space separated) of each of the header's signal lines."""
    num_signals = get_num_signals(string)
    lines = string.split("\n")
    return [lines[i].split(" ")[index] for i in range(1, num_signals + 1)]


def get_record_name(string):
    return _record_field(string, 0).split("/")[0].strip()


def get_num_signals(string):
    value = _record_field(string, 1).strip()
    return int(value) if is_integer(value) else None


def get_sampling_frequency(string):
    value = _record_field(string, 2).split("/")[0].strip()
    return float(value) if is_number(value) else None


def get_num_samples(string):
    value = _record_field(string, 3).strip()
    return int(value) if is_integer(value) else None


def get_signal_formats(string):
    values = []
    for field in _signal_fields(string, 1):
        for mark in ("x", ":", "+"):
            field = field.split(mark)[0]
        values.append(field)
    return values


def _gain_field(field):
    return field.split("/")[0] if "/" in field else field


def get_adc_gains(string):
    values = []
    for field in _signal_fields(string, 2):
        field = _gain_field(field)
        if "(" in field and ")" in field:
            field = field.split("(")[0]
        values.append(float(field))
    return values


def get_baselines(string):
    values = []
    for i, field in enumerate(_signal_fields(string, 2)):
        field = _gain_field(field)
        if "(" in field and ")" in field:
            values.append(int(field.split("(")[1].split(")")[0]))
        else:
            values.append(int(get_adc_zeros(string)[i]))
    return values


def get_signal_units(string):
    return [field.split("/")[1] if "/" in field else "mV" for field in _signal_fields(string, 2)]


def get_adc_resolutions(string):
    return [int(field) for field in _signal_fields(string, 3)]


def get_adc_zeros(string):
    return [int(field) for field in _signal_fields(string, 4)]


def get_initial_values(string):
    return [int(field) for field in _signal_fields(string, 5)]


def get_checksums(string):
    return [int(field) for field in _signal_fields(string, 6)]


def get_block_sizes(string):
    return [int(field) for field in _signal_fields(string, 7)]


def get_signal_names(string):
    return _signal_fields(string, 8)


# --------------------------------------------------------------------------------------------------
# Classification metric


def compute_one_vs_rest_confusion_matrix(labels, outputs, classes):
    """``A[k]`` = [[TP, FP], [FN, TN]] for class k; labels/outputs are one-hot (records x classes)."""
    assert np.shape(labels) == np.shape(outputs)
    labels = np.asarray(labels).reshape(len(labels), len(classes))
    outputs = np.asarray(outputs).reshape(len(outputs), len(classes))
    A = np.zeros((len(classes), 2, 2))
    for j in range(len(classes)):
        truth, guess = labels[:, j], outputs[:, j]
        A[j, 0, 0] = np.sum((truth == 1) & (guess == 1))
        A[j, 0, 1] = np.sum((truth == 0) & (guess == 1))
        A[j, 1, 0] = np.sum((truth == 1) & (guess == 0))
        A[j, 1, 1] = np.sum((truth == 0) & (guess == 0))
    return A


def _f_measures_from_confusion(A):
    """(macro, per_class): F = 2TP / (2TP + FP + FN), NaN for a class without TP/FP/FN; NaN classes ignored."""
    per_class = np.zeros(len(A))
    for k in range(len(A)):
        tp, fp, fn = A[k, 0, 0], A[k, 0, 1], A[k, 1, 0]
        denominator = 2 * tp + fp + fn
        per_class[k] = float(2 * tp) / float(denominator) if denominator > 0 else float("nan")
    macro = float(np.nanmean(per_class)) if np.any(np.isfinite(per_class)) else float("nan")
    return macro, per_class


def compute_f_measure(labels, outputs):
    """``(macro, per_class, classes)``; classes = sorted union of the reference labels, NaN classes ignored."""
    classes = sorted(set().union(*map(set, labels)))
    A = compute_one_vs_rest_confusion_matrix(
        compute_one_hot_encoding(labels, classes), compute_one_hot_encoding(outputs, classes), classes
    )
    macro, per_class = _f_measures_from_confusion(A)
    return macro, per_class, classes


# --------------------------------------------------------------------------------------------------
# Digitization metrics


def normalize_names(names_ref, names_est):
    """Each name of ``names_est`` spelled as its case-insensitive match in ``names_ref`` (unmatched dropped)."""
    normalized = []
    for name in names_est:
        for ref in names_ref:
            if name.casefold() == ref.casefold():
                normalized.append(ref)
                break
    return normalized


def reorder_signal(input_signal, input_channels, output_channels):
    """Columns of ``input_signal`` rearranged into ``output_channels`` order (names matched case-insensitively)."""
    assert len(set(input_channels)) == len(input_channels)
    assert len(set(output_channels)) == len(output_channels)
    if input_channels == output_channels:
        return input_signal
    output_channels = normalize_names(input_channels, output_channels)
    input_signal = np.asarray(input_signal)
    output_signal = np.zeros((np.shape(input_signal)[0], len(output_channels)), dtype=input_signal.dtype)
    for i, out_name in enumerate(output_channels):
        for j, in_name in enumerate(input_channels):
            if in_name == out_name:
                output_signal[:, i] = input_signal[:, j]
    return output_signal


def convert_signal(x, num_quant_levels, min_amp, max_amp, max_t):
    """Binary ``num_quant_levels x max_t`` image of the 1D signal (non-finite samples left empty)."""
    x = np.asarray(x)
    keep = np.isfinite(x)
    t = np.arange(1, np.size(x) + 1)[keep]
    levels = np.round((num_quant_levels - 1) * (x[keep] - min_amp) / (max_amp - min_amp) + 1).astype(int)
    levels = np.clip(levels, 1, num_quant_levels)
    image = np.zeros((num_quant_levels, max_t))
    image[levels - 1, t - 1] = 1
    return image


def fft_correlate(A_ref, A_est):
    """Full 2D cross-correlation of two images, computed with FFTs."""
    from scipy.signal import fftconvolve

    return fftconvolve(A_ref, np.flip(A_est, axis=(0, 1)), mode="full")


def align_signals(x_ref, x_est, num_quant_levels, smooth=True, sigma=0.5):
    """``(shifted, shift_samples, shift_mV)``: the estimate shifted by the 2D cross-correlation peak lag."""
    x_ref = np.asarray(x_ref)
    x_est = np.asarray(x_est)
    min_amp = min(np.nanmin(x_ref), np.nanmin(x_est))
    max_amp = max(np.nanmax(x_ref), np.nanmax(x_est))
    max_t = max(np.size(x_ref), np.size(x_est))

    A_ref = convert_signal(x_ref, num_quant_levels, min_amp, max_amp, max_t)
    A_est = convert_signal(x_est, num_quant_levels, min_amp, max_amp, max_t)
    if smooth:
        from scipy.ndimage import gaussian_filter

        A_ref = gaussian_filter(A_ref, sigma)
        A_est = gaussian_filter(A_est, sigma)

    cross = fft_correlate(A_ref, A_est)
    peak_cross = np.unravel_index(np.argmax(cross), cross.shape)
    auto = fft_correlate(A_ref, A_ref)
    peak_auto = np.unravel_index(np.argmax(auto), auto.shape)

    shift_samples = peak_auto[1] - peak_cross[1]
    shift_mv = (peak_auto[0] - peak_cross[0]) / (num_quant_levels - 1) * (max_amp - min_amp)
    if shift_samples < 0:
        shifted = np.concatenate((np.full(-shift_samples, np.nan), x_est))
    else:
        shifted = np.concatenate((x_est[shift_samples:], np.full(shift_samples, np.nan)))
    shifted = shifted - shift_mv
    return shifted, shift_samples, shift_mv


def _paired_samples(x_ref, x_est, keep_nans):
    """Pad to equal length with NaN; return (ref kept, est kept, kept count, finite-reference count)."""
    x_ref = np.asarray(x_ref, dtype=np.float64).copy()
    x_est = np.asarray(x_est, dtype=np.float64).copy()
    assert x_ref.ndim == x_est.ndim == 1
    n = max(x_ref.size, x_est.size)
    x_ref = np.concatenate((x_ref, np.full(n - x_ref.size, np.nan)))
    x_est = np.concatenate((x_est, np.full(n - x_est.size, np.nan)))
    finite_ref = np.isfinite(x_ref)
    finite_est = np.isfinite(x_est)
    if keep_nans:
        keep = finite_ref & finite_est
    else:
        x_est[~finite_est] = 0
        keep = finite_ref
    return x_ref[keep], x_est[keep], int(np.sum(keep)), int(np.sum(finite_ref))


def compute_snr(x_ref, x_est, keep_nans=True, signal_median=False, noise_median=False):
    """``(snr, p_signal, p_noise)`` in dB, scaled by the fraction of finite reference samples kept."""
    ref, est, kept, finite_ref = _paired_samples(x_ref, x_est, keep_nans)
    if kept == 0:
        return (0.0 if finite_ref > 0 else float("nan")), float("nan"), float("nan")
    noise = ref - est
    p_signal = float(np.median(ref**2) if signal_median else np.mean(ref**2))
    p_noise = float(np.median(noise**2) if noise_median else np.mean(noise**2))
    snr = 10 * np.log10(p_signal / p_noise) if p_signal > 0 and p_noise > 0 else float("nan")
    if keep_nans:
        snr *= kept / finite_ref
    return float(snr), p_signal, p_noise


def compute_ks_metric(x_ref, x_est, keep_nans=True):
    """1 minus the largest gap between the normalized cumulative absolute amplitudes."""
    ref, est, kept, _ = _paired_samples(x_ref, x_est, keep_nans)
    if kept == 0:
        return float("nan")
    ref_cdf = np.nancumsum(np.abs(ref))
    est_cdf = np.nancumsum(np.abs(est))
    if ref_cdf[-1] > 0:
        ref_cdf = ref_cdf / ref_cdf[-1]
    if est_cdf[-1] > 0:
        est_cdf = est_cdf / est_cdf[-1]
    return 1.0 - np.max(np.abs(ref_cdf - est_cdf))


def compute_asci_metric(x_ref, x_est, beta=0.05, keep_nans=True):
    """Mean of +1 (|error| <= beta * std(ref)) / -1 (otherwise) over the kept samples."""
    ref, est, kept, _ = _paired_samples(x_ref, x_est, keep_nans)
    if beta <= 0 or beta > 1:
        raise ValueError("The beta value should be greater than 0 and less than or equal to 1.")
    if kept == 0:
        return float("nan")
    threshold = beta * np.std(ref)
    return float(np.mean(np.where(np.abs(ref - est) <= threshold, 1.0, -1.0)))


def compute_weighted_absolute_difference(x_ref, x_est, sampling_frequency, keep_nans=True):
    """Absolute error weighted by 1 - 0.5 * (100 ms moving average of the reference) / its maximum."""
    ref, est, kept, _ = _paired_samples(x_ref, x_est, keep_nans)
    if kept == 0:
        return float("nan")
    from scipy.signal import filtfilt

    m = round(0.1 * sampling_frequency)
    weights = filtfilt(np.ones(m), m, ref, method="gust")
    weights = 1 - 0.5 / np.max(weights) * weights
    return float(np.sum(np.abs(ref - est) * weights) / np.sum(weights))


# --------------------------------------------------------------------------------------------------
# Other helpers


def is_number(x):
    try:
        float(x)
        return True
    except (ValueError, TypeError):
        return False


def is_integer(x):
    return float(x).is_integer() if is_number(x) else False


def is_finite_number(x):
    return bool(np.isfinite(float(x))) if is_number(x) else False


def is_nan(x):
    return bool(np.isnan(float(x))) if is_number(x) else False


def cast_int_float_unknown(x):
    """int if integral, float if finite, 'Unknown' if a non-finite number; otherwise NotImplementedError."""
    if is_integer(x):
        return int(float(x))
    if is_finite_number(x):
        return float(x)
    if is_number(x):
        return "Unknown"
    raise NotImplementedError(f"Unable to cast {x}.")


def compute_one_hot_encoding(data, classes):
    """Boolean records x classes matrix; NaN matches NaN."""
    encoding = np.zeros((len(data), len(classes)), dtype=np.bool_)
    for i, items in enumerate(data):
        for item in items:
            for j, name in enumerate(classes):
                if item == name or (is_nan(item) and is_nan(name)):
                    encoding[i, j] = True
    return encoding
