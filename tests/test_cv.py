"""k-fold cross-validation at tiny size: every fold trains, scores its held-out records, and reports Table 1."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from derc.config import get_preset
from derc.cv import run_cv
from derc.labels import LABELS
from derc.synth import write_dataset


def test_two_fold_cv_reports_table_one(tmp_path, capsys):
    data = tmp_path / "data"
    write_dataset(data, 12, seed=5, progress=False)
    config = dataclasses.replace(get_preset("tiny"), cls=dataclasses.replace(get_preset("tiny").cls, epochs=1))
    folds = run_cv(str(data), str(tmp_path / "cv"), folds=2, config=config, verbose=False)

    assert len(folds) == 2
    for fold in folds:
        assert list(fold) == list(LABELS)
        for row in fold.values():
            assert 0.0 <= row["accuracy"] <= 1.0
            assert np.isnan(row["auroc"]) or 0.0 <= row["auroc"] <= 1.0
    table = (tmp_path / "cv" / "table.txt").read_text()
    assert table.splitlines()[0].split() == ["label", "accuracy", "AUROC", "F1"]
    assert all(any(line.startswith(label) for line in table.splitlines()) for label in LABELS)
    assert "macro F1:" in table and "over 2 fold(s)" in table
    assert json.loads((tmp_path / "cv" / "folds.json").read_text()) == json.loads(json.dumps(folds))
    assert "macro F1:" in capsys.readouterr().out
    for k in range(2):
        assert (tmp_path / "cv" / f"fold{k}" / "manifest.json").is_file()
