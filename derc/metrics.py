"""Per-label accuracy, AUROC and F1 (scikit-learn), and the paper's Table 1 format (mean ± SD)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from derc.labels import LABELS


def per_label_metrics(y_true: np.ndarray, y_prob: np.ndarray, thresholds: np.ndarray) -> dict[str, dict[str, float]]:
    """{label: {accuracy, auroc, f1}}; AUROC is NaN when a label has only one class, F1 when it never occurs."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = (np.asarray(y_prob) >= np.asarray(thresholds)[None, :]).astype(int)
    table = {}
    for j, name in enumerate(LABELS):
        truth, pred = y_true[:, j], y_pred[:, j]
        both = 0 < truth.sum() < len(truth)
        table[name] = {
            "accuracy": float(accuracy_score(truth, pred)),
            "auroc": float(roc_auc_score(truth, y_prob[:, j])) if both else float("nan"),
            "f1": float(f1_score(truth, pred, zero_division=0)) if truth.any() or pred.any() else float("nan"),
        }
    return table


def macro(table: dict[str, dict[str, float]], metric: str) -> float:
    values = [row[metric] for row in table.values() if np.isfinite(row[metric])]
    return float(np.mean(values)) if values else float("nan")


def format_table(folds: Sequence[dict[str, dict[str, float]]]) -> str:
    """Table 1 of the paper: per label accuracy, AUROC and F1 as mean ± SD over folds, then macro F1."""

    def cell(label: str, metric: str) -> str:
        values = np.array([fold[label][metric] for fold in folds], dtype=float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            return "n/a"
        return f"{values.mean():.2f}±{values.std():.2f}"

    lines = [f"{'label':<10} {'accuracy':>11} {'AUROC':>11} {'F1':>11}"]
    for label in LABELS:
        lines.append(f"{label:<10} {cell(label, 'accuracy'):>11} {cell(label, 'auroc'):>11} {cell(label, 'f1'):>11}")
    macros = np.array([macro(fold, "f1") for fold in folds])
    lines.append(f"macro F1: {np.nanmean(macros):.3f} ± {np.nanstd(macros):.3f} over {len(folds)} fold(s)")
    return "\n".join(lines)
