"""Read a WFDB record into the standard 12-lead layout (samples x 12, millivolts, LEADS order)."""

from __future__ import annotations

import os
from dataclasses import dataclass

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
