"""Read a WFDB record into the standard 12-lead layout (samples x 12, millivolts, LEADS order)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

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
