"""Youden and F-measure thresholds on hand-made cases, fallbacks, and the JSON file format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from derc.config import Config
from derc.errors import ModelFolderError
from derc.labels import LABELS
from derc.thresholds import (
    f1_thresholds,
    fit_thresholds_with_info,
    image_thresholds,
    load_threshold_info,
    load_thresholds,
    save_thresholds,
    youden_thresholds,
    youden_thresholds_with_info,
)


def _case() -> tuple[np.ndarray, np.ndarray]:
    truth = np.array(
        [
            [0, 0, 0, 1, 1],
            [0, 0, 0, 1, 1],
            [1, 1, 0, 1, 0],
            [1, 1, 0, 1, 0],
        ]
    )
    prob = np.array(
        [
            [0.10, 0.20, 0.3, 0.5, 0.1],
            [0.40, 0.30, 0.6, 0.7, 0.2],
            [0.35, 0.60, 0.2, 0.9, 0.8],
            [0.80, 0.90, 0.1, 0.1, 0.9],
        ]
    )
    return truth, prob


def test_youden_hand_made_case() -> None:
    truth, prob = _case()
    thresholds, fell_back = youden_thresholds_with_info(truth, prob)
    # label 0: J = 0.5 both at 0.8 and at 0.35 -> the higher cut wins the tie, then halfway to the next
    #          lower score (0.4): 0.6
    # label 1: perfectly separated -> halfway between the lowest positive (0.6) and the highest negative (0.3)
    # label 2: no positives, label 3: no negatives -> fallback
    # label 4: inversely ranked, best J = 0 first reached at sklearn's +inf cut ("predict nothing") -> halfway
    #          between 1.0 and the highest score (0.9): still predicts nothing
    np.testing.assert_allclose(thresholds, [0.6, 0.45, 0.5, 0.5, 0.95])
    assert fell_back.tolist() == [False, False, True, True, False]
    np.testing.assert_array_equal(youden_thresholds(truth, prob, fallback=0.3)[2:4], [0.3, 0.3])


def test_thresholds_reproduce_best_j() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=(200, 3))
    prob = np.clip(0.3 * truth + rng.random((200, 3)) * 0.8, 0, 1)
    thresholds = youden_thresholds(truth, prob)
    for label in range(3):
        predicted = prob[:, label] >= thresholds[label]
        positives = truth[:, label] == 1
        j = predicted[positives].mean() - predicted[~positives].mean()
        best = max((prob[positives, label] >= c).mean() - (prob[~positives, label] >= c).mean() for c in prob[:, label])
        assert j == pytest.approx(best)


def test_threshold_sits_midway_in_the_gap_of_equal_j() -> None:
    # one positive (0.74) above every negative: J = 1 for any cut in (0.05, 0.74]; the threshold takes the
    # middle of that gap, so a test positive scoring 0.70 is still found
    truth = np.array([[0], [0], [0], [1]])
    prob = np.array([[0.01], [0.05], [0.03], [0.74]])
    (threshold,) = youden_thresholds(truth, prob)
    assert threshold == pytest.approx(0.395)
    assert 0.70 >= threshold > 0.05


def _rare_label() -> tuple[np.ndarray, np.ndarray]:
    # 2 positives (0.9, 0.3) among 20 records; 3 negatives score between them, 15 below both
    prob = np.array([0.9, 0.3, 0.8, 0.7, 0.6, *np.linspace(0.01, 0.25, 15)])[:, None]
    truth = np.zeros_like(prob, dtype=int)
    truth[:2] = 1
    return truth, prob


def test_f1_rule_on_a_rare_label() -> None:
    truth, prob = _rare_label()
    # Youden: J = 1 - 3/18 at the cut 0.3 (both positives, 3 false alarms) beats J = 0.5 at 0.9 -> halfway
    #         to the next lower score (0.25)
    # F: 2 * 0.4 * 1 / 1.4 = 0.571 at 0.3 against 2 * 1 * 0.5 / 1.5 = 0.667 at 0.9 -> halfway to 0.8
    np.testing.assert_allclose(youden_thresholds(truth, prob), [0.275])
    np.testing.assert_allclose(f1_thresholds(truth, prob), [0.85])


def test_f1_thresholds_reach_the_best_f() -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random((300, 4)) < [0.05, 0.2, 0.5, 0.8]).astype(int)
    prob = np.round(np.clip(0.3 * truth + rng.random((300, 4)) * 0.8, 0, 1), 2)  # rounded: tied scores
    thresholds, fell_back = fit_thresholds_with_info(truth, prob, rule="f1")
    assert not fell_back.any()
    for label in range(4):
        t, p = truth[:, label] == 1, prob[:, label]
        f1 = {c: 2 * ((p >= c) & t).sum() / ((p >= c).sum() + t.sum()) for c in np.unique(p)}
        best = max(f1.values())
        cut = p[p >= thresholds[label]].min()  # the lowest score the threshold labels
        assert f1[cut] == best
        # among equally good cuts the highest, and the threshold strictly inside the gap below it
        assert all(f < best for c, f in f1.items() if c > cut)
        assert p[p < cut].max() < thresholds[label] < cut


def test_threshold_rules_share_the_fallback_and_refuse_unknown_rules() -> None:
    truth, prob = _case()
    thresholds, fell_back = fit_thresholds_with_info(truth, prob, rule="f1", fallback=0.3)
    assert fell_back.tolist() == [False, False, True, True, False]
    np.testing.assert_array_equal(thresholds[2:4], [0.3, 0.3])
    with pytest.raises(ValueError, match="unknown threshold rule 'auc'"):
        fit_thresholds_with_info(truth, prob, rule="auc")
    with pytest.raises(ValueError, match="unknown threshold_rule 'auc'"):
        Config(threshold_rule="auc")
    assert Config().threshold_rule == "youden"


def test_youden_rejects_bad_input() -> None:
    truth, prob = _case()
    with pytest.raises(ValueError, match="must be equal"):
        youden_thresholds(truth, prob[:, :3])
    prob[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        youden_thresholds(truth, prob)


def test_thresholds_file_round_trip(tmp_path) -> None:
    values = np.linspace(0.05, 0.95, len(LABELS))
    path = tmp_path / "thresholds.json"
    save_thresholds(path, values, info={"fallback": np.zeros(len(LABELS), dtype=bool), "n": np.int64(40)})
    np.testing.assert_array_equal(load_thresholds(path), values)
    assert json.loads(path.read_text())["info"]["n"] == 40


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": list(reversed(LABELS))}, "labels"),
        ({"thresholds": [0.5] * (len(LABELS) - 1)}, "11 thresholds"),
        ({"thresholds": [1.5] + [0.5] * (len(LABELS) - 1)}, "outside"),
        ({"thresholds": ["x"] + [0.5] * (len(LABELS) - 1)}, "non-numeric"),
        ({"format_version": 99}, "version"),
        ({"format": "other"}, "not a thresholds file"),
    ],
)
def test_invalid_thresholds_file_is_refused(tmp_path, change: dict, message: str) -> None:
    path = tmp_path / "thresholds.json"
    save_thresholds(path, np.full(len(LABELS), 0.5))
    document = json.loads(path.read_text()) | change
    path.write_text(json.dumps(document))
    with pytest.raises(ModelFolderError, match=message):
        load_thresholds(path)


def test_image_route_thresholds(tmp_path) -> None:
    path = tmp_path / "thresholds.json"
    save_thresholds(path, np.full(len(LABELS), 0.5))
    assert (
        image_thresholds(load_threshold_info(path), path) is None
    )  # older models: the main thresholds serve both routes
    save_thresholds(path, np.full(len(LABELS), 0.5), info={"image_thresholds": [0.25] * len(LABELS)})
    assert image_thresholds(load_threshold_info(path), path).tolist() == [0.25] * len(LABELS)
    save_thresholds(path, np.full(len(LABELS), 0.5), info={"image_thresholds": [1.5] * len(LABELS)})
    with pytest.raises(ModelFolderError, match="image_thresholds outside"):
        image_thresholds(load_threshold_info(path), path)


def test_missing_or_garbled_thresholds_file(tmp_path) -> None:
    with pytest.raises(ModelFolderError, match="missing"):
        load_thresholds(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match=r"bad\.json"):
        load_thresholds(tmp_path / "bad.json")


def test_training_log_names_fragile_thresholds(caplog) -> None:
    from derc.pipeline import _log_thresholds

    truth = np.zeros((40, len(LABELS)), dtype=int)
    truth[:20, 0] = 1  # NORM: 20 positives
    truth[0, LABELS.index("BRADY")] = 1  # BRADY: one positive
    prob = np.where(truth == 1, 0.9, 0.1)
    thresholds, fallback = youden_thresholds_with_info(truth, prob)
    with caplog.at_level("INFO", logger="derc"):
        _log_thresholds(truth, prob, thresholds, fallback)
    assert "NORM 0.500 (20, 50%)" in caplog.text and "BRADY 0.500 (1, 2%)" in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "BRADY (1)" in warnings[0] and "NORM" not in warnings[0]
    assert "PAC" not in warnings[0]  # no positives at all: the fallback, not a fragile fit
