"""Per-label decision thresholds fitted on validation data: by Youden's J (sensitivity + specificity - 1, the
method's rule) or by the F-measure (``rule="f1"``, what the Challenge scores).

A label scores positive when its probability is at or above the threshold (as :func:`derc.labels.decode`).
Ties in J are broken towards the HIGHEST cut (the first maximum along sklearn's descending threshold list):
among equally good cuts, the one predicting fewest positives. The threshold then sits halfway between that
cut's score and the next lower validation score: every threshold in that gap labels the validation records
alike (same J), and the middle leaves unseen records the widest margin either side. At the score itself, a
label with a single validation positive (BRADY or TACHY among 80 validation records) was found on test
records only when they scored at least as high as that one record. A label whose validation truth has no
positives or no negatives has an undefined ROC curve (TPR or FPR is 0/0), so it gets ``fallback`` (0.5 by
default, the natural cut of a sigmoid output trained with BCE); the ``fallback_mask`` says which ones.

The F rule takes each label's cut of highest F-measure on validation (ties: again the highest cut) and the same
halfway threshold below it. Youden's J weighs a missed positive and a false alarm by the label's prevalence, so
for a rare label it labels many records to catch most positives; the F-measure counts false alarms against the
positives found, which is what the Challenge's macro F rewards (BENCHMARKS.md, "Threshold rules").
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from derc.errors import ModelFolderError
from derc.fileio import write_json_atomic
from derc.labels import LABELS

THRESHOLDS_FORMAT = "derc-thresholds"
THRESHOLDS_FORMAT_VERSION = 1


def _halfway_below(cut: float, prob: np.ndarray) -> float:
    """The threshold halfway between ``cut`` (a validation score, or above them all) and the next lower
    validation score: it labels the validation records as ``cut`` does. ``cut`` itself when no score is lower
    or the two are too close to have a float between them."""
    high = min(float(cut), 1.0)
    lower = prob[prob < cut]
    if not lower.size:
        return high
    middle = 0.5 * (high + float(lower.max()))
    return middle if middle > lower.max() else high


def _youden_one(truth: np.ndarray, prob: np.ndarray) -> float:
    from sklearn.metrics import roc_curve  # imported here: inference loads thresholds without sklearn

    fpr, tpr, cuts = roc_curve(truth, prob, drop_intermediate=False)  # cuts: the distinct scores, descending
    best = int(np.argmax(tpr - fpr))  # first maximum = highest cut among ties; cuts[0] is +inf ("predict nothing")
    return _halfway_below(cuts[best], prob)


def _f1_one(truth: np.ndarray, prob: np.ndarray) -> float:
    from sklearn.metrics import roc_curve

    fpr, tpr, cuts = roc_curve(truth, prob, drop_intermediate=False)  # as in _youden_one
    positives = int(truth.sum())
    found = np.rint(tpr * positives)  # counts, so that equal F-measures compare equal
    false_alarms = np.rint(fpr * (len(truth) - positives))
    f1 = 2.0 * found / (found + false_alarms + positives)
    return _halfway_below(cuts[int(np.argmax(f1))], prob)  # first maximum = highest cut among ties


_RULES = {"youden": _youden_one, "f1": _f1_one}
# How thresholds are chosen on validation: "youden" (the method) or "f1" (best F-measure per label).
THRESHOLD_RULES = tuple(_RULES)


def fit_thresholds_with_info(
    y_true: np.ndarray, y_prob: np.ndarray, *, rule: str = "youden", fallback: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds (float64, one per label) by ``rule`` (one of :data:`THRESHOLD_RULES`) and a boolean mask of
    the labels that got ``fallback``."""
    if rule not in _RULES:
        raise ValueError(f"unknown threshold rule {rule!r}; choose one of {', '.join(THRESHOLD_RULES)}")
    truth = np.asarray(y_true)
    prob = np.asarray(y_prob, dtype=np.float64)
    if truth.ndim != 2 or truth.shape != prob.shape:
        raise ValueError(f"y_true {truth.shape} and y_prob {prob.shape} must be equal (samples, labels) arrays")
    if not np.all(np.isfinite(prob)):
        raise ValueError("y_prob contains NaN or infinite values")
    if not np.all(np.isin(truth, (0, 1))):
        raise ValueError("y_true must hold only 0 and 1")
    truth = truth.astype(np.int64)
    thresholds = np.full(truth.shape[1], float(fallback), dtype=np.float64)
    fell_back = np.ones(truth.shape[1], dtype=bool)
    for label in range(truth.shape[1]):
        positives = int(truth[:, label].sum())
        if 0 < positives < truth.shape[0]:
            thresholds[label] = _RULES[rule](truth[:, label], prob[:, label])
            fell_back[label] = False
    return thresholds, fell_back


def youden_thresholds_with_info(
    y_true: np.ndarray, y_prob: np.ndarray, *, fallback: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds at the maximum of Youden's J and the mask of labels that got ``fallback``."""
    return fit_thresholds_with_info(y_true, y_prob, rule="youden", fallback=fallback)


def youden_thresholds(y_true: np.ndarray, y_prob: np.ndarray, *, fallback: float = 0.5) -> np.ndarray:
    """Per-label thresholds at the maximum of Youden's J; see the module docstring for ties and fallbacks."""
    return youden_thresholds_with_info(y_true, y_prob, fallback=fallback)[0]


def f1_thresholds(y_true: np.ndarray, y_prob: np.ndarray, *, fallback: float = 0.5) -> np.ndarray:
    """Per-label thresholds at the maximum of the F-measure; see the module docstring."""
    return fit_thresholds_with_info(y_true, y_prob, rule="f1", fallback=fallback)[0]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_thresholds(
    path: str | os.PathLike[str],
    thresholds: np.ndarray | Sequence[float],
    labels: Sequence[str] = LABELS,
    info: dict[str, Any] | None = None,
) -> None:
    """Write thresholds as versioned JSON, with the label names and free-form ``info`` (e.g. fallbacks)."""
    values = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if values.size != len(labels):
        raise ValueError(f"{values.size} thresholds for {len(labels)} labels")
    if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 1)):
        raise ValueError(f"thresholds must lie in [0, 1], got {values.tolist()}")
    document = {
        "format": THRESHOLDS_FORMAT,
        "format_version": THRESHOLDS_FORMAT_VERSION,
        "labels": list(labels),
        "thresholds": values.tolist(),
        "info": _jsonable(info or {}),
    }
    write_json_atomic(path, document)


def load_threshold_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The free-form ``info`` saved with the thresholds (after :func:`load_thresholds` has checked the file)."""
    load_thresholds(path)
    info = json.loads(Path(path).read_text(encoding="utf-8")).get("info", {})
    return info if isinstance(info, dict) else {}


def load_thresholds(path: str | os.PathLike[str]) -> np.ndarray:
    """Read thresholds written by :func:`save_thresholds` for :data:`LABELS`; problems raise ModelFolderError."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(f"thresholds file {path} is missing") from None
    except (OSError, ValueError) as error:
        raise ModelFolderError(f"cannot read thresholds file {path}: {error}") from error
    if not isinstance(document, dict) or document.get("format") != THRESHOLDS_FORMAT:
        raise ModelFolderError(f"{path} is not a thresholds file of this program")
    if document.get("format_version") != THRESHOLDS_FORMAT_VERSION:
        raise ModelFolderError(
            f"thresholds file {path} has format version {document.get('format_version')!r}, "
            f"expected {THRESHOLDS_FORMAT_VERSION}"
        )
    if document.get("labels") != list(LABELS):
        raise ModelFolderError(f"thresholds file {path} is for labels {document.get('labels')!r}, not {list(LABELS)}")
    return _threshold_values(document.get("thresholds"), path, "thresholds")


def image_thresholds(info: dict[str, Any], path: str | os.PathLike[str]) -> np.ndarray | None:
    """The image route's own thresholds of a model with a signal branch (``info["image_thresholds"]`` of the
    thresholds file at ``path``, as :func:`load_threshold_info` reads it), for records whose page could not be
    digitized; None when the file has none (older or image-only models)."""
    raw = info.get("image_thresholds")
    return None if raw is None else _threshold_values(raw, path, "image_thresholds")


def _threshold_values(raw: Any, path: str | os.PathLike[str], what: str) -> np.ndarray:
    if not isinstance(raw, list) or len(raw) != len(LABELS):
        raise ModelFolderError(f"thresholds file {path} must hold {len(LABELS)} {what}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
        raise ModelFolderError(f"thresholds file {path} holds non-numeric {what}")
    values = np.asarray(raw, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 1)):
        raise ModelFolderError(f"thresholds file {path} holds {what} outside [0, 1]: {raw}")
    return values
