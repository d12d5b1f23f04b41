"""Read a WFDB record into the standard 12-lead layout (samples x 12, millivolts, LEADS order)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import wfdb

from derc.errors import RecordError
from derc.labels import LEADS

_LEAD_INDEX = {name.lower(): i for i, name in enumerate(LEADS)}
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}


@dataclass(frozen=True)
class RecordSignal:
    signal: np.ndarray  # (samples, 12) float32 mV, NaN where a lead is missing or a sample unplotted
    fs: float
    record: str

    @property
    def duration_s(self) -> float:
        return self.signal.shape[0] / self.fs


def standardize_leads(signal: np.ndarray, names: list[str], *, record: str = "") -> np.ndarray:
    """Reorder ``signal``'s columns (named ``names``) into LEADS order; absent leads become NaN."""
    out = np.full((signal.shape[0], len(LEADS)), np.nan, dtype=np.float32)
    found = 0
    for column, name in enumerate(names):
        index = _LEAD_INDEX.get(str(name).strip().lower())
        if index is not None:
            out[:, index] = signal[:, column]
            found += 1
    if found == 0:
        raise RecordError(record, f"none of its leads {names} is a standard 12-lead name")
    return out


def classifier_input(signal: np.ndarray, fs: float, *, hz: float, seconds: float = 10.0) -> np.ndarray:
    """The signal classifier's input: ``(24, round(hz * seconds))`` float32, area-resampled to ``hz``.

    ``signal`` is ``(samples, 12)`` mV in LEADS order with NaN where the page did not show a lead (a digitized
    record) or a lead is missing. Rows 0-11 are the leads (0 where not shown), rows 12-23 their shown masks
    (1 where at least half of a resampled step was shown). Records shorter than ``seconds`` are zero-padded,
    longer ones cut (the pages show the first 10 s).
    """
    data = np.asarray(signal, dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != len(LEADS):
        raise ValueError(f"expected a (samples, {len(LEADS)}) signal, got shape {data.shape}")
    if not (math.isfinite(fs) and fs > 0 and hz > 0 and seconds > 0):
        raise ValueError(f"need fs, hz and seconds > 0, got fs={fs}, hz={hz}, seconds={seconds}")
    length = round(hz * seconds)
    out = np.zeros((2 * len(LEADS), length), dtype=np.float32)
    if data.shape[0] == 0:
        return out
    shown = np.isfinite(data)
    values = np.where(shown, data, 0.0).astype(np.float32)
    n = max(1, round(data.shape[0] * hz / fs))
    values = cv2.resize(values, (len(LEADS), n), interpolation=cv2.INTER_AREA)[:length]
    fraction = cv2.resize(shown.astype(np.float32), (len(LEADS), n), interpolation=cv2.INTER_AREA)[:length]
    mask = fraction >= 0.5
    out[len(LEADS) :, : mask.shape[0]] = mask.T
    # a step half shown holds the mean of its shown part, not that mean diluted by the zeros beside it
    out[: len(LEADS), : values.shape[0]] = np.where(mask, values / np.maximum(fraction, 0.5), 0.0).T
    return out


def read_signal(record: str | os.PathLike[str]) -> RecordSignal:
    """Load the signal of ``record`` (header path without extension) via wfdb, in mV and LEADS order."""
    record = str(record)
    try:
        data, fields = wfdb.rdsamp(record)
    except FileNotFoundError as error:
        raise RecordError(record, f"signal file missing ({error.filename or error})") from error
    except Exception as error:  # wfdb raises many types for malformed files
        raise RecordError(record, f"cannot read signal: {error}") from error
    fs = float(fields["fs"])
    if not np.isfinite(fs) or fs <= 0:
        raise RecordError(record, f"invalid sampling frequency {fields['fs']!r}")
    data = np.asarray(data, dtype=np.float32)
    if data.ndim != 2 or data.shape[0] == 0:
        raise RecordError(record, "signal is empty")
    units = fields.get("units") or ["mV"] * data.shape[1]
    scale = np.array([_UNIT_TO_MV.get(str(u).strip().lower(), 1.0) for u in units], dtype=np.float32)
    signal = standardize_leads(data * scale, list(fields["sig_name"]), record=record)
    return RecordSignal(signal=signal, fs=fs, record=record)


# Bits per sample of the WFDB storage formats (310/311 pack three samples in 4 bytes, 212 two in 3).
_FORMAT_BITS = {
    **{"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16},
    **{"212": 12, "310": 32 / 3, "311": 32 / 3},
}


def signal_problem(record: str | os.PathLike[str]) -> str | None:
    """Why the record's signal cannot be read (checked from the header and file sizes only), or None.

    Problems: unreadable header, no or missing signal files, no standard lead name, no samples, and a
    signal file shorter than its header promises (truncated), which wfdb would refuse only when read.
    """
    header = Path(f"{record}.hea")
    try:
        meta = wfdb.rdheader(str(record))
    except Exception as error:  # wfdb raises many types for malformed headers
        return f"unreadable header ({error})"
    names = list(meta.file_name or [])
    if not names or not all(names):
        return "no signal files in the header"
    missing = sorted({name for name in names if not (header.parent / name).is_file()})
    if missing:
        return f"signal file(s) missing: {', '.join(missing)}"
    if not any(str(name).strip().lower() in _LEAD_INDEX for name in meta.sig_name or []):
        return f"none of its leads {meta.sig_name} is a standard 12-lead name"
    if not meta.sig_len:
        return "the header declares no samples"
    offsets = list(meta.byte_offset or [None] * len(names))
    for name in dict.fromkeys(names):
        channels = [i for i, file in enumerate(names) if file == name]
        bits = [_FORMAT_BITS.get(str(meta.fmt[i])) for i in channels]
        if any(b is None for b in bits):
            continue  # a format we do not size: wfdb decides when reading
        offset = max((offsets[i] or 0) for i in channels)
        expected = offset + math.ceil(meta.sig_len * sum(bits) / 8 - 1e-9)
        actual = (header.parent / name).stat().st_size
        if actual < expected:
            return f"signal file {name} is truncated ({actual} bytes, the header needs {expected})"
    return None
