"""Index a folder of Challenge records for training: labels, image files, whether signals exist."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from derc.errors import DercError
from derc.fileio import write_atomic, write_text_atomic
from derc.labels import LABELS, encode
from derc.signals import signal_problem

log = logging.getLogger("derc")


@dataclass(frozen=True)
class RecordEntry:
    path: str  # header path without extension
    labels: np.ndarray  # multi-hot over LABELS
    image_files: tuple[str, ...]  # as listed in "# Image:", relative to the header's folder
    has_signal: bool
    signal_problem: str | None = None  # why the signal is unusable (None when usable or simply absent)

    @property
    def name(self) -> str:
        return Path(self.path).name


def _comment_values(comments: Sequence[str], key: str) -> list[str] | None:
    """Comma-separated values of the first ``key:`` comment line, or None when there is none."""
    prefix = key.lower() + ":"
    for line in comments:
        text = line.strip().lstrip("#").strip()
        if text.lower().startswith(prefix):
            return [v.strip() for v in text[len(prefix) :].split(",") if v.strip()]
    return None


def _header_comments(record: str) -> list[str]:
    """The comment lines of a WFDB header (without their '#'), read as plain text.

    Unlabeled records are skipped on this cheap read alone; only labeled ones have their signal files
    checked (``signal_problem``, via wfdb).
    """
    lines = Path(f"{record}.hea").read_text(encoding="utf-8", errors="replace").splitlines()
    if not any(line.strip() and not line.lstrip().startswith("#") for line in lines):
        raise ValueError("empty header")
    return [line.lstrip()[1:] for line in lines if line.lstrip().startswith("#")]


def read_entry(record: str | os.PathLike[str]) -> RecordEntry | None:
    """Entry of one record, or None when its header has no ``# Labels:`` line."""
    record = str(record)
    comments = _header_comments(record)
    labels = _comment_values(comments, "Labels")
    if labels is None:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vector = encode(labels, record=record)
    for warning in caught:
        log.warning("%s", warning.message)
    images = tuple(_comment_values(comments, "Image") or ())
    problem = signal_problem(record)
    absent = problem is not None and problem.startswith(("signal file(s) missing", "no signal files"))
    return RecordEntry(
        path=record,
        labels=vector,
        image_files=images,
        has_signal=problem is None,
        signal_problem=None if absent else problem,
    )


def index_records(data_folder: str | os.PathLike[str], records: Sequence[str]) -> list[RecordEntry]:
    """Entries for ``records`` (ids relative to ``data_folder``); unlabeled records are skipped with a count."""
    entries, unlabeled = [], 0
    for record in records:
        path = os.path.join(data_folder, record)
        try:
            entry = read_entry(path)
        except Exception as error:
            log.warning("skipping record %s: unreadable header (%s)", record, error)
            continue
        if entry is None:
            unlabeled += 1
            continue
        if entry.signal_problem is not None:
            use = "using its images only" if entry.image_files else "skipping it"
            log.warning("record %s: signal unusable (%s); %s", record, entry.signal_problem, use)
        if not entry.has_signal and not entry.image_files:
            if entry.signal_problem is None:
                log.warning("skipping record %s: neither signal files nor images", record)
            continue
        entries.append(entry)
    if unlabeled:
        log.warning("skipped %d record(s) without a '# Labels:' line", unlabeled)
    if not entries:
        raise DercError(f"no usable training records in {data_folder} (need labeled records with signals or images)")
    absent = absent_labels(entries)
    if absent:
        log.warning(
            "label(s) never present in the training records: %s; the model cannot learn them and they keep the "
            "fallback threshold 0.5",
            ", ".join(absent),
        )
    return entries


def absent_labels(entries: Sequence[RecordEntry]) -> list[str]:
    """Labels (in LABELS order) that no entry carries."""
    if not entries:
        return list(LABELS)
    counts = np.sum([entry.labels for entry in entries], axis=0)
    return [name for name, count in zip(LABELS, counts) if count == 0]


def split_entries(
    entries: Sequence[RecordEntry], *, val_fraction: float, seed: int
) -> tuple[list[RecordEntry], list[RecordEntry]]:
    """Seeded random split into (train, validation); validation gets at least one record when possible."""
    order = np.random.default_rng(seed).permutation(len(entries))
    n_val = round(len(entries) * val_fraction)
    if val_fraction > 0 and len(entries) >= 2:
        n_val = min(max(n_val, 1), len(entries) - 1)
    val = [entries[i] for i in sorted(order[:n_val])]
    train = [entries[i] for i in sorted(order[n_val:])]
    return train, val


def write_test_inputs(
    source: str | os.PathLike[str], target: str | os.PathLike[str], records: Sequence[str] | None = None
) -> list[str]:
    """Copy records as the hidden test set looks: headers without ``# Labels:`` and images, no signals.

    ``records`` are ids relative to ``source`` (all ``.hea`` files, sorted, when None).
    """
    import shutil

    source, target = Path(source), Path(target)
    if records is None:
        records = sorted(str(p.relative_to(source).with_suffix("")) for p in source.rglob("*.hea"))
    for record in records:
        header = source / f"{record}.hea"
        lines = header.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if not line.strip().lower().startswith("# labels:")]
        out = target / f"{record}.hea"
        entry_images = _comment_values([line[1:] for line in lines if line.startswith("#")], "Image") or []
        for name in entry_images:  # images first: a header only appears once its images are complete
            image = header.parent / name
            if image.is_file():
                write_atomic(out.parent / name, lambda tmp, image=image: shutil.copyfile(image, tmp))
        write_text_atomic(out, "\n".join(kept) + "\n")
    return list(records)
