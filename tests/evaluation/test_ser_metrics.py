"""Speech-emotion metrics: UA, WA, per-class scores, confusion matrix, reports, plots and run aggregation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from audioadapt.data.utterances import EMOTIONS
from audioadapt.errors import DataError
from audioadapt.evaluation.report import write_report
from audioadapt.evaluation.ser_metrics import (
    SerMetrics,
    aggregate_runs,
    plot_confusion_matrix,
    ser_metrics,
)

# EMO-DB speaker 15, four classes, in EMOTIONS order (angry, happy, sad, neutral).
EMODB_SUPPORT = {"angry": 13, "happy": 6, "sad": 4, "neutral": 11}


def emodb_case(correct: dict[str, int], wrong_as: str = "angry") -> tuple[list[str], list[str]]:
    """Reference of 34 utterances; ``correct[c]`` of class c right, the rest predicted as ``wrong_as``."""
    y_true, y_pred = [], []
    for c, n in EMODB_SUPPORT.items():
        y_true += [c] * n
        y_pred += [c] * correct[c] + [wrong_as] * (n - correct[c])
    return y_true, y_pred


@pytest.mark.parametrize(
    "correct, ua_pct, wa_pct",
    [
        # The per-class breakdowns of the paper's EMO-DB rows (see the method notes).
        ({"angry": 13, "happy": 0, "sad": 1, "neutral": 0}, 31.25, 41.18),  # SNSA-F
        ({"angry": 13, "happy": 0, "sad": 3, "neutral": 0}, 43.75, 47.06),  # SNSA-wo-SL
        ({"angry": 13, "happy": 0, "sad": 3, "neutral": 1}, 46.02, 50.00),  # SNSA-wo-HL
        ({"angry": 13, "happy": 0, "sad": 3, "neutral": 3}, 50.57, 55.88),  # NNPM
    ],
)
def test_emodb_rows_of_the_paper(correct, ua_pct, wa_pct):
    y_true, y_pred = emodb_case(correct)
    m = ser_metrics(y_true, y_pred, EMOTIONS)
    assert m.n_utterances == 34
    assert m.n_correct == sum(correct.values())
    assert round(100 * m.ua, 2) == ua_pct
    assert round(100 * m.wa, 2) == wa_pct
    assert m.absent_classes == ()


def test_emodb_snsa_f_by_hand():
    y_true, y_pred = emodb_case({"angry": 13, "happy": 0, "sad": 1, "neutral": 0})
    m = ser_metrics(y_true, y_pred, EMOTIONS)
    # recall: angry 13/13, happy 0/6, sad 1/4, neutral 0/11
    assert m.recall.tolist() == [1.0, 0.0, 0.25, 0.0]
    assert m.ua == pytest.approx((1 + 0 + 0.25 + 0) / 4) and m.ua == pytest.approx(5 / 16)
    assert m.wa == pytest.approx(14 / 34)
    # 20 wrong utterances all predicted angry: angry precision 13/33
    assert m.precision[0] == pytest.approx(13 / 33)
    assert math.isnan(m.precision[1]) and math.isnan(m.precision[3])  # never predicted
    assert m.precision[2] == 1.0
    assert m.f1[0] == pytest.approx(2 * 13 / (13 + 33))
    assert m.f1[1] == 0.0  # present, never predicted: F1 0, not NaN
    assert m.support.tolist() == [13, 6, 4, 11]
    assert m.predicted.tolist() == [33, 0, 1, 0]
    expected = np.array([[13, 0, 0, 0], [6, 0, 0, 0], [3, 0, 1, 0], [11, 0, 0, 0]])
    np.testing.assert_array_equal(m.confusion, expected)


def test_one_utterance_moves_wa_by_2_94_points():
    base = ser_metrics(*emodb_case({"angry": 13, "happy": 0, "sad": 3, "neutral": 2}))
    more = ser_metrics(*emodb_case({"angry": 13, "happy": 0, "sad": 3, "neutral": 3}))
    assert round(100 * (more.wa - base.wa), 2) == 2.94
    assert more.ua - base.ua == pytest.approx(1 / 11 / 4)


def test_indices_and_names_agree_and_rows_are_true_classes():
    m_idx = ser_metrics([0, 0, 1, 2], [0, 1, 1, 3], EMOTIONS)
    m_name = ser_metrics(["angry", "angry", "happy", "sad"], ["angry", "happy", "happy", "neutral"])
    np.testing.assert_array_equal(m_idx.confusion, m_name.confusion)
    assert m_idx.confusion[0, 1] == 1 and m_idx.confusion[1, 0] == 0  # true angry predicted happy
    assert m_idx.confusion[2, 3] == 1


def test_absent_class_is_left_out_of_ua_and_listed():
    # No sad utterance in the reference, but one sad prediction.
    y_true = ["angry", "angry", "happy", "neutral", "neutral", "neutral"]
    y_pred = ["angry", "sad", "happy", "neutral", "angry", "neutral"]
    m = ser_metrics(y_true, y_pred, EMOTIONS)
    assert m.absent_classes == ("sad",)
    assert math.isnan(m.recall[2])
    assert m.precision[2] == 0.0 and m.f1[2] == 0.0  # predicted but never right
    assert m.ua == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    assert m.wa == pytest.approx(4 / 6)  # the wrong sad prediction still counts against WA
    d = m.to_dict()
    assert d["absent_classes"] == ["sad"]
    assert d["ua_classes"] == ["angry", "happy", "neutral"]
    assert d["class_wise"]["sad"]["recall"] is None
    json.dumps(d, allow_nan=False)


def test_class_in_neither_side_has_nan_f1():
    m = ser_metrics([0, 1], [0, 1], ("a", "b", "c"))
    assert math.isnan(m.f1[2]) and math.isnan(m.precision[2]) and math.isnan(m.recall[2])
    assert m.ua == 1.0 and m.wa == 1.0


def _reference_definitions(t: np.ndarray, p: np.ndarray, n: int):
    """Per-class counts and scores by loops, scikit-learn's definitions (NaN where undefined)."""
    conf = np.zeros((n, n), dtype=int)
    for a, b in zip(t, p):
        conf[a, b] += 1
    recall, precision, f1 = [], [], []
    for c in range(n):
        tp = sum(1 for a, b in zip(t, p) if a == c and b == c)
        fn = sum(1 for a, b in zip(t, p) if a == c and b != c)
        fp = sum(1 for a, b in zip(t, p) if a != c and b == c)
        recall.append(tp / (tp + fn) if tp + fn else np.nan)
        precision.append(tp / (tp + fp) if tp + fp else np.nan)
        pr, rc = precision[-1], recall[-1]
        if np.isnan(pr) or np.isnan(rc):
            f1.append(0.0 if (tp + fn) or (tp + fp) else np.nan)
        else:
            f1.append(0.0 if pr + rc == 0 else 2 * pr * rc / (pr + rc))
    balanced = np.nanmean(recall)
    accuracy = np.mean(t == p)
    return conf, np.array(recall), np.array(precision), np.array(f1), balanced, accuracy


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_reference_definitions(seed):
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 6))
    n = int(rng.integers(1, 60))
    t = rng.integers(0, n_classes, n)
    if seed % 2:  # make one class absent from the reference
        t[t == n_classes - 1] = 0
    p = np.where(rng.random(n) < 0.5, t, rng.integers(0, n_classes, n))
    classes = tuple(f"c{i}" for i in range(n_classes))
    m = ser_metrics(t, p, classes)
    conf, recall, precision, f1, balanced, accuracy = _reference_definitions(t, p, n_classes)
    np.testing.assert_array_equal(m.confusion, conf)
    np.testing.assert_allclose(m.recall, recall, equal_nan=True)
    np.testing.assert_allclose(m.precision, precision, equal_nan=True)
    np.testing.assert_allclose(m.f1, f1, equal_nan=True)
    assert m.ua == pytest.approx(balanced)
    assert m.wa == pytest.approx(accuracy)


def test_agrees_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    t = rng.integers(0, 4, 200)
    logits = rng.normal(size=(200, 4)) + 2.0 * np.eye(4)[t]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p = prob.argmax(axis=1)
    m = ser_metrics(t, p, EMOTIONS, probabilities=prob)
    np.testing.assert_array_equal(m.confusion, sk.confusion_matrix(t, p, labels=range(4)))
    assert m.ua == pytest.approx(sk.balanced_accuracy_score(t, p))
    assert m.wa == pytest.approx(sk.accuracy_score(t, p))
    pr, rc, f1, support = sk.precision_recall_fscore_support(t, p, labels=range(4), zero_division=np.nan)
    np.testing.assert_allclose(m.precision, pr)
    np.testing.assert_allclose(m.recall, rc)
    np.testing.assert_allclose(m.f1, f1)
    np.testing.assert_array_equal(m.support, support)
    assert m.log_loss == pytest.approx(sk.log_loss(t, prob, labels=range(4)))


def test_log_loss_by_hand():
    prob = np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0]])
    m = ser_metrics([0, 3, 2], [0, 0, 2], EMOTIONS, probabilities=prob)
    assert m.log_loss == pytest.approx((math.log(2) + math.log(4) + 0.0) / 3)
    # a zero probability on the true class is clipped, not infinite
    m0 = ser_metrics([1], [0], EMOTIONS, probabilities=[[1.0, 0.0, 0.0, 0.0]])
    assert math.isfinite(m0.log_loss) and m0.log_loss > 30
    assert ser_metrics([0], [0]).log_loss is None


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, match",
    [
        ([0, 1, 2], [0, 1], {}, "3 utterances but y_pred has 2"),
        ([0, 4], [0, 1], {}, r"y_true: utterance 2 has class index 4, outside 0\.\.3"),
        ([0, 1], [0, -1], {}, "y_pred: utterance 2 has class index -1.*unlabelled"),
        (["angry", "bored"], [0, 1], {}, "y_true: utterance 2 has label 'bored'"),
        ([0.0, 1.0], [0, 1], {}, "integer class indices or class names"),
        ([[0, 1]], [[0, 1]], {}, "1-D"),
        ([], [], {}, "no utterances"),
        ([0, 1], [0, 1], {"probabilities": np.full((2, 3), 1 / 3)}, r"shape \(2, 3\), expected"),
        ([0, 1], [0, 1], {"probabilities": [[0.5, 0.5, 0, 0], [0.9, 0.9, 0, 0]]}, "utterance 2 sum to 1.8"),
        ([0, 1], [0, 1], {"probabilities": [[0.5, 0.5, 0, 0], [np.nan, 1, 0, 0]]}, "finite"),
    ],
)
def test_bad_input_raises_data_error(y_true, y_pred, kwargs, match):
    with pytest.raises(DataError, match=match):
        ser_metrics(y_true, y_pred, EMOTIONS, **kwargs)


def test_bad_classes_raise():
    with pytest.raises(DataError, match="duplicates"):
        ser_metrics([0], [0], ("a", "a"))
    with pytest.raises(DataError, match="non-empty"):
        ser_metrics([0], [0], ())


def test_dict_round_trip_and_bad_stored_matrix():
    y_true, y_pred = emodb_case({"angry": 13, "happy": 0, "sad": 3, "neutral": 3})
    m = ser_metrics(y_true, y_pred)
    back = SerMetrics.from_dict(json.loads(json.dumps(m.to_dict())))
    np.testing.assert_array_equal(back.confusion, m.confusion)
    assert back.classes == m.classes and back.ua == m.ua
    with pytest.raises(DataError, match="shape"):
        SerMetrics(("a", "b"), np.zeros((3, 3), dtype=int))
    with pytest.raises(DataError, match="negative"):
        SerMetrics(("a", "b"), np.array([[1, -1], [0, 2]]))
    with pytest.raises(DataError, match="confusion"):
        SerMetrics.from_dict({"classes": ["a"]})


def test_report_json_and_markdown(tmp_path):
    y_true, y_pred = emodb_case({"angry": 13, "happy": 0, "sad": 1, "neutral": 0})
    m = ser_metrics(y_true, y_pred)
    report = m.report(settings={"protocol": "A"}, inputs={"corpus": "emodb"})
    json_path, md_path = write_report(report, tmp_path / "ser.json")
    data = json.loads(json_path.read_text())
    assert data["kind"] == "ser"
    assert data["entries"]["ua"] == pytest.approx(5 / 16)
    assert data["entries"]["wa"] == pytest.approx(14 / 34)
    assert "log_loss" not in data["entries"]
    assert data["results"]["confusion"][1] == [6, 0, 0, 0]
    assert data["settings"] == {"protocol": "A"} and data["inputs"] == {"corpus": "emodb"}
    md = md_path.read_text()
    lines = md.splitlines()
    assert "| true \\ predicted | angry | happy | sad | neutral | support |" in lines
    assert "| sad | 3 (75.0 %) | 0 (0.0 %) | 1 (25.0 %) | 0 (0.0 %) | 4 |" in lines
    # per-class row: support, predicted, recall %, precision %, F1 % (F1 = 2*1/(4+1))
    assert "| sad | 4 | 1 | 25.00 | 100.00 | 40.00 |" in lines
    assert "| happy | 6 | 0 | 0.00 | n/a | 0.00 |" in lines
    assert "WA = 14/34 correct" in md


def test_confusion_table_marks_absent_rows():
    m = ser_metrics([0, 0], [0, 1], ("a", "b"))
    rows = m.confusion_table().rows
    assert rows[0][1:] == ["1 (50.0 %)", "1 (50.0 %)", 2]
    assert rows[1][1:] == ["0 (n/a)", "0 (n/a)", 0]


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_matrix_writes_png(tmp_path, normalize):
    matplotlib = pytest.importorskip("matplotlib")
    backend = matplotlib.get_backend()
    m = ser_metrics(*emodb_case({"angry": 13, "happy": 0, "sad": 3, "neutral": 3}))
    path = plot_confusion_matrix(m, tmp_path / "plots" / "confusion.png", normalize=normalize)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert matplotlib.get_backend() == backend


def test_aggregate_runs_mean_and_std():
    a = ser_metrics(*emodb_case({"angry": 13, "happy": 0, "sad": 1, "neutral": 0}))  # UA 5/16, WA 14/34
    b = ser_metrics(*emodb_case({"angry": 13, "happy": 0, "sad": 3, "neutral": 3}))  # WA 19/34
    agg = aggregate_runs({"seed 0": a, "seed 1": b})
    ua_b = (1 + 0 + 3 / 4 + 3 / 11) / 4
    assert agg.ua_mean == pytest.approx((5 / 16 + ua_b) / 2)
    assert agg.ua_std == pytest.approx(abs(ua_b - 5 / 16) / math.sqrt(2))  # sample std of two values
    assert agg.wa_mean == pytest.approx(33 / 68)
    assert agg.wa_std == pytest.approx((5 / 34) / math.sqrt(2))
    assert aggregate_runs([a, b], ddof=0).wa_std == pytest.approx(2.5 / 34)
    np.testing.assert_allclose(agg.recall_mean, [1.0, 0.0, (0.25 + 0.75) / 2, 3 / 22])
    assert agg.confusion_sum.sum() == 68
    assert math.isnan(aggregate_runs([a]).ua_std)
    report = agg.report()
    assert [row[0] for row in report.tables[0].rows] == ["seed 0", "seed 1", "mean", "std (ddof 1)"]
    json.dumps(report.to_dict(), allow_nan=False)


def test_aggregate_recall_mean_skips_runs_without_the_class():
    a = ser_metrics([0, 1], [0, 0], ("x", "y"))  # y recall 0
    b = ser_metrics([0, 0], [0, 0], ("x", "y"))  # y absent
    np.testing.assert_allclose(aggregate_runs([a, b]).recall_mean, [1.0, 0.0])


def test_aggregate_rejects_bad_runs():
    with pytest.raises(DataError, match="no runs"):
        aggregate_runs([])
    with pytest.raises(DataError, match="classes"):
        aggregate_runs([ser_metrics([0], [0], ("a", "b")), ser_metrics([0], [0], ("a", "c"))])


def test_per_speaker_by_hand():
    from audioadapt.evaluation.ser_metrics import per_speaker

    # speaker a: 3 angry, 2 right; b: happy and sad, both wrong; one utterance without a speaker, right
    speakers = ["a", "a", "a", "b", "b", None]
    y_true = ["angry", "angry", "angry", "happy", "sad", "neutral"]
    y_pred = ["angry", "angry", "sad", "neutral", "neutral", "neutral"]
    record, table = per_speaker(speakers, y_true, y_pred)
    assert record["a"] == {"utterances": 3, "correct": 2, "accuracy": pytest.approx(2 / 3),
                           "true": {"angry": 3}, "predicted": {"angry": 2, "sad": 1}}
    assert record["b"]["accuracy"] == 0.0 and record["b"]["true"] == {"happy": 1, "sad": 1}
    assert record["(none)"]["correct"] == 1
    text = table.to_markdown()
    assert "| a | 3 | angry 3 | angry | 66.67 |" in text and "| b | 2 | happy 1, sad 1 | neutral | 0.00 |" in text
    with pytest.raises(DataError, match="2 speakers, 6 reference"):
        per_speaker(["a", "b"], y_true, y_pred)
