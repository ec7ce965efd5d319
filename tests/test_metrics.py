"""Tests of sklearn_lt.metrics, against values computed by hand."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV, cross_validate
from threadpoolctl import threadpool_limits

from sklearn_lt.metrics import (
    expected_calibration_error,
    few_shot_accuracy_scorer,
    long_tail_report,
    make_shot_scorer,
    shot_accuracy,
    tail_accuracy_scorer,
)


@pytest.fixture(autouse=True)
def _single_thread():
    with threadpool_limits(limits=1):
        yield


# Training counts straddling the default thresholds many=100, few=20:
# a, b many-shot (> 100); c, d medium-shot (20..100 inclusive); e, f few-shot.
COUNTS = {"a": 150, "b": 101, "c": 100, "d": 20, "e": 19, "f": 5}
Y_TRAIN = [label for label, n in COUNTS.items() for _ in range(n)]
# Per-class recalls: a 3/4, b 2/2, c 1/2, d 1/4, e 0/1, f 1/2.
Y_TRUE = list("aaaa" + "bb" + "cc" + "dddd" + "e" + "ff")
Y_PRED = list("aaab" + "bb" + "ca" + "daaa" + "a" + "fa")


def _nan_equal(a, b):
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k])
        for k in a
    )


# --------------------------------------------------------------------------- #
# shot_accuracy
# --------------------------------------------------------------------------- #


def test_shot_accuracy_by_hand():
    scores = shot_accuracy(Y_TRUE, Y_PRED, y_train=Y_TRAIN)
    assert scores == pytest.approx(
        {
            "many": (0.75 + 1.0) / 2,
            "medium": (0.5 + 0.25) / 2,
            "few": (0.0 + 0.5) / 2,
            "overall": 3.0 / 6,
        }
    )
    assert scores["overall"] == pytest.approx(balanced_accuracy_score(Y_TRUE, Y_PRED))


def test_shot_accuracy_count_formats_agree():
    expected = shot_accuracy(Y_TRUE, Y_PRED, y_train=Y_TRAIN)
    assert shot_accuracy(Y_TRUE, Y_PRED, class_counts=COUNTS) == expected
    # An array is aligned with the sorted labels of y_true and y_pred ...
    array = list(COUNTS.values())
    assert shot_accuracy(Y_TRUE, Y_PRED, class_counts=array) == expected
    # ... or with labels.
    labels = ["f", "e", "d", "c", "b", "a"]
    got = shot_accuracy(Y_TRUE, Y_PRED, class_counts=array[::-1], labels=labels)
    assert got == expected
    # A Series is read by its index, whatever its order.
    value_counts = pd.Series(Y_TRAIN).value_counts().sample(frac=1, random_state=0)
    assert shot_accuracy(Y_TRUE, Y_PRED, class_counts=value_counts) == expected


def test_shot_accuracy_thresholds():
    # With many=150, few=5: a is medium (150 is not > 150), f medium (5 is not < 5).
    scores = shot_accuracy(Y_TRUE, Y_PRED, y_train=Y_TRAIN, many=150, few=5)
    assert math.isnan(scores["many"])
    assert math.isnan(scores["few"])
    assert scores["medium"] == pytest.approx(0.5)


def test_empty_groups_are_nan():
    scores = shot_accuracy([0, 1, 1], [0, 1, 0], class_counts={0: 500, 1: 200})
    assert scores["many"] == pytest.approx((1.0 + 0.5) / 2)
    assert math.isnan(scores["medium"])
    assert math.isnan(scores["few"])


def test_classes_absent_from_y_true_do_not_count():
    # "b" (many) and "e" (few) have no test sample: only "a" and "f" count.
    scores = shot_accuracy(list("aaff"), list("abfa"), class_counts=COUNTS)
    assert scores["many"] == pytest.approx(0.5)
    assert math.isnan(scores["medium"])
    assert scores["few"] == pytest.approx(0.5)
    assert scores["overall"] == pytest.approx(0.5)


def test_single_class():
    scores = shot_accuracy([3, 3, 3], [3, 3, 3], y_train=[3] * 10)
    assert _nan_equal(
        scores, {"many": math.nan, "medium": math.nan, "few": 1.0, "overall": 1.0}
    )
    scores = shot_accuracy([3, 3], [3, 3], y_train=[3] * 10, groups="quantile")
    assert _nan_equal(
        scores, {"head": 1.0, "middle": math.nan, "tail": math.nan, "overall": 1.0}
    )


def test_labels_select_classes_and_add_zero_count_classes():
    # Only "a" and "f" are evaluated; test samples of other classes are ignored.
    scores = shot_accuracy(Y_TRUE, Y_PRED, class_counts=COUNTS, labels=["a", "f"])
    assert scores["many"] == pytest.approx(0.75)
    assert scores["few"] == pytest.approx(0.5)
    assert scores["overall"] == pytest.approx((0.75 + 0.5) / 2)
    # "z" has no training example: a few-shot class with count 0.
    scores = shot_accuracy(
        ["a", "z", "z"], ["a", "z", "a"], class_counts=COUNTS, labels=["a", "z"]
    )
    assert scores["few"] == pytest.approx(0.5)


def test_quantile_groups_by_hand():
    # Six distinct counts: two classes per third.
    scores = shot_accuracy(Y_TRUE, Y_PRED, class_counts=COUNTS, groups="quantile")
    assert scores == pytest.approx(
        {"head": 0.875, "middle": 0.375, "tail": 0.25, "overall": 0.5}
    )


@pytest.mark.parametrize(
    "counts, expected",
    [
        # distinct counts: np.array_split sizes 4 / 3 / 3
        (list(range(10, 0, -1)), ["head"] * 4 + ["middle"] * 3 + ["tail"] * 3),
        # ties share the group of their mean position (1.5 of 4: middle)
        ([100, 50, 50, 10], ["head", "middle", "middle", "tail"]),
        # all equal: mean position (C - 1) / 2, middle
        ([7, 7, 7, 7], ["middle"] * 4),
        # two classes: no tail
        ([9, 1], ["head", "middle"]),
        ([5, 5, 5, 1, 1, 1], ["head"] * 3 + ["tail"] * 3),
    ],
)
def test_quantile_tie_handling(counts, expected):
    labels = np.arange(len(counts))
    report = long_tail_report(
        labels,
        labels,
        class_counts=counts,
        labels=labels,
        groups="quantile",
        output_dict=True,
    )
    assert [report[str(i)]["group"] for i in labels] == expected


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40),
    st.lists(st.integers(1, 200), min_size=4, max_size=4),
)
def test_overall_is_balanced_accuracy(pairs, counts):
    y_true, y_pred = (np.array(v) for v in zip(*pairs, strict=True))
    scores = shot_accuracy(y_true, y_pred, class_counts=counts, labels=[0, 1, 2, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(y_true, y_pred)
    assert scores["overall"] == pytest.approx(expected)
    groups = [scores[g] for g in ("many", "medium", "few")]
    assert all(math.isnan(v) or 0.0 <= v <= 1.0 for v in groups)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "exactly one of class_counts and y_train"),
        ({"class_counts": COUNTS, "y_train": Y_TRAIN}, "exactly one"),
        ({"class_counts": [1, 2, 3]}, "class_counts has 3 entries but there are 6"),
        ({"class_counts": {"a": -1}}, "non-negative"),
        ({"class_counts": COUNTS, "few": 200}, "few must be <= many"),
        ({"class_counts": COUNTS, "groups": "thirds"}, "groups must be one of"),
        ({"class_counts": COUNTS, "labels": ["a", "a"]}, "duplicates"),
        ({"y_train": ["a", "b"]}, r"y_true contains labels without a training count"),
    ],
)
def test_shot_accuracy_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shot_accuracy(Y_TRUE, Y_PRED, **kwargs)


def test_shot_accuracy_input_errors():
    with pytest.raises(ValueError, match="different lengths"):
        shot_accuracy([0, 1], [0], class_counts={0: 1, 1: 1})
    with pytest.raises(ValueError, match="empty"):
        shot_accuracy([], [], class_counts={0: 1})
    # Predictions encoded as indices instead of labels are caught.
    with pytest.raises(ValueError, match=r"y_pred contains labels .*\[0, 1\]"):
        shot_accuracy(["a", "b"], [0, 1], class_counts={"a": 5, "b": 5})


# --------------------------------------------------------------------------- #
# expected_calibration_error
# --------------------------------------------------------------------------- #


def test_ece_perfectly_calibrated():
    # 10 samples at confidence 0.8 of which 8 right, 5 at 0.6 of which 3 right.
    y_proba = [[0.2, 0.8]] * 10 + [[0.6, 0.4]] * 5
    y_true = [1] * 8 + [0] * 2 + [0] * 3 + [1] * 2
    assert expected_calibration_error(y_true, y_proba) == pytest.approx(0.0, abs=1e-12)


def test_ece_miscalibrated_by_hand():
    y_proba = [
        [0.7, 0.2, 0.1],  # predicts 0, right, confidence 0.7
        [0.7, 0.2, 0.1],  # predicts 0, wrong, 0.7
        [0.1, 0.3, 0.6],  # predicts 2, right, 0.6
        [0.25, 0.25, 0.5],  # predicts 2, right, 0.5
        [0.1, 0.85, 0.05],  # predicts 1, wrong, 0.85
    ]
    y_true = [0, 1, 2, 2, 0]
    # Bins of width 0.2: (0.4, 0.6] holds 0.6, 0.5 (acc 1, conf 0.55);
    # (0.6, 0.8] holds 0.7, 0.7 (acc 0.5); (0.8, 1] holds 0.85 (acc 0).
    expected = (2 * abs(1 - 0.55) + 2 * abs(0.5 - 0.7) + abs(0 - 0.85)) / 5
    assert expected == pytest.approx(0.43)
    got = expected_calibration_error(y_true, y_proba, n_bins=5)
    assert got == pytest.approx(expected)
    # One bin: |accuracy - mean confidence|.
    got = expected_calibration_error(y_true, y_proba, n_bins=1)
    assert got == pytest.approx(abs(3 / 5 - 3.35 / 5))


def test_ece_bin_edges_are_right_closed():
    # Confidence 0.5 falls in (0, 0.5], confidence 1 in (0.5, 1].
    got = expected_calibration_error([0, 1], [[0.5, 0.5], [1.0, 0.0]], n_bins=2)
    assert got == pytest.approx((abs(1 - 0.5) + abs(0 - 1.0)) / 2)


def test_ece_binary_inputs_and_labels():
    # Away from the bin edges k / 15, so float32 rounding moves no sample.
    p1 = np.array([0.91, 0.22, 0.65, 0.38, 0.55])
    y = np.array(["no", "yes", "yes", "no", "no"])
    two_d = expected_calibration_error(y, np.column_stack([1 - p1, p1]))
    assert expected_calibration_error(y, p1) == pytest.approx(two_d)
    # labels give the column order: swapping both changes nothing.
    swapped = expected_calibration_error(
        y, np.column_stack([p1, 1 - p1]), labels=["yes", "no"]
    )
    assert swapped == pytest.approx(two_d)
    as_float32 = expected_calibration_error(y, p1.astype(np.float32))
    assert as_float32 == pytest.approx(two_d, abs=1e-6)


@pytest.mark.parametrize(
    "y_true, y_proba, kwargs, match",
    [
        ([0, 1], [[0.5, 0.6], [0.5, 0.5]], {}, "must sum to 1"),
        ([0, 1], [[1.5, -0.5], [0.5, 0.5]], {}, r"in \[0, 1\]"),
        ([0, 0], [[0.5, 0.5], [0.5, 0.5]], {}, "2 columns but there are 1"),
        ([0, 2], [[0.5, 0.5], [0.5, 0.5]], {"labels": [0, 1]}, "not in labels"),
        ([0, 1, 1], [[0.5, 0.5], [0.5, 0.5]], {}, "different lengths"),
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], {"n_bins": 0}, "n_bins"),
    ],
)
def test_ece_errors(y_true, y_proba, kwargs, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error(y_true, y_proba, **kwargs)


# --------------------------------------------------------------------------- #
# long_tail_report
# --------------------------------------------------------------------------- #

# Sorted label order (ant, bee, cow) differs from head-to-tail (bee, cow, ant).
R_TRAIN = ["ant"] * 5 + ["bee"] * 150 + ["cow"] * 50
R_TRUE = ["ant", "ant", "bee", "bee", "cow", "cow"]
R_PRED = ["bee", "ant", "bee", "bee", "cow", "bee"]


def test_report_dict_values():
    report = long_tail_report(R_TRUE, R_PRED, y_train=R_TRAIN, output_dict=True)
    assert list(report)[:3] == ["bee", "cow", "ant"]
    assert report["bee"] == pytest.approx(
        {
            "train_support": 150,
            "test_support": 2,
            "precision": 0.5,
            "recall": 1.0,
            "f1-score": 2 / 3,
            "group": "many",
        }
    )
    assert report["ant"]["group"] == "few"
    assert report["ant"]["precision"] == 1.0
    assert report["macro avg"] == pytest.approx(
        {
            "train_support": 205,
            "test_support": 6,
            "precision": (0.5 + 1 + 1) / 3,
            "recall": 2 / 3,
            "f1-score": (2 / 3) * 3 / 3,
        }
    )
    assert report["few"] == {
        "n_classes": 1,
        "train_support": 5,
        "test_support": 2,
        "recall": 0.5,
    }
    accuracy = shot_accuracy(R_TRUE, R_PRED, y_train=R_TRAIN)
    for group in ("many", "medium", "few", "overall"):
        assert report[group]["recall"] == accuracy[group]
    assert report["overall"]["recall"] == report["macro avg"]["recall"]


def test_report_text_is_head_to_tail():
    text = long_tail_report(
        R_TRUE, R_PRED, y_train=R_TRAIN, target_names=["Ant", "Bee", "Cow"], digits=3
    )
    lines = text.splitlines()
    rows = [line.split()[0] for line in lines[2:5]]
    assert rows == ["Bee", "Cow", "Ant"]
    assert lines[2].split() == ["Bee", "150", "2", "0.500", "1.000", "0.667"]
    assert "macro avg" in text
    assert any(line.split()[:2] == ["few", "[1]"] for line in lines)
    assert "many: train > 100, medium: 20 <= train <= 100" in text


def test_report_quantile_and_absent_class():
    # "dog" has training examples but no test sample: listed, left out of averages.
    counts = {"ant": 5, "bee": 150, "cow": 50, "dog": 80}
    report = long_tail_report(
        R_TRUE, R_PRED, class_counts=counts, groups="quantile", output_dict=True
    )
    assert list(report)[:4] == ["bee", "dog", "cow", "ant"]
    assert report["dog"]["test_support"] == 0
    assert report["macro avg"]["test_support"] == 6
    assert report["macro avg"]["train_support"] == 205
    assert report["overall"]["n_classes"] == 3
    # Four classes: head bee, dog; middle cow; tail ant.
    assert report["head"]["n_classes"] == 1
    assert report["middle"]["recall"] == 0.5
    assert report["tail"]["recall"] == 0.5
    text = long_tail_report(R_TRUE, R_PRED, class_counts=counts, groups="quantile")
    assert "tail [1]" in text
    assert "thirds of the classes" in text


def test_report_converts_to_dataframe():
    report = long_tail_report(R_TRUE, R_PRED, y_train=R_TRAIN, output_dict=True)
    frame = pd.DataFrame(report).T
    assert list(frame.index) == [
        "bee",
        "cow",
        "ant",
        "macro avg",
        "many",
        "medium",
        "few",
        "overall",
    ]
    assert frame.loc["cow", "recall"] == 0.5


def test_report_errors():
    with pytest.raises(ValueError, match="target_names has 2 entries"):
        long_tail_report(R_TRUE, R_PRED, y_train=R_TRAIN, target_names=["a", "b"])
    with pytest.raises(ValueError, match="pass target_names to rename"):
        long_tail_report(["few"], ["few"], class_counts={"few": 3})
    with pytest.raises(ValueError, match="digits"):
        long_tail_report(R_TRUE, R_PRED, y_train=R_TRAIN, digits=-1)


# --------------------------------------------------------------------------- #
# Scorers
# --------------------------------------------------------------------------- #


class _LogisticRegressionWithCounts(LogisticRegression):
    """Test-only classifier exposing class_counts_, as sklearn_lt's do."""

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)
        self.class_counts_ = np.array([np.sum(y == c) for c in self.classes_])
        return self


@pytest.fixture(scope="module")
def imbalanced():
    # ~720 / 210 / 70 samples: with cv=3, training folds have ~480 / 140 / 47.
    return make_classification(
        n_samples=1000,
        n_classes=3,
        n_informative=4,
        weights=[0.72, 0.21, 0.07],
        random_state=0,
    )


def test_scorer_in_cross_validate(imbalanced):
    X, y = imbalanced
    scoring = {
        "few": make_shot_scorer("few", many=200, few=100),
        "overall": make_shot_scorer("overall"),
        "bal": "balanced_accuracy",
    }
    result = cross_validate(
        _LogisticRegressionWithCounts(),
        X,
        y,
        cv=3,
        scoring=scoring,
        return_estimator=True,
        return_indices=True,
    )
    np.testing.assert_allclose(result["test_overall"], result["test_bal"])
    for est, train, test, score in zip(
        result["estimator"],
        result["indices"]["train"],
        result["indices"]["test"],
        result["test_few"],
        strict=True,
    ):
        expected = shot_accuracy(
            y[test], est.predict(X[test]), y_train=y[train], many=200, few=100
        )["few"]
        assert score == pytest.approx(expected)
        # Class 2 is the only few-shot class: its recall.
        assert score == pytest.approx(np.mean(est.predict(X[test][y[test] == 2]) == 2))


def test_scorer_in_grid_search(imbalanced):
    X, y = imbalanced
    search = GridSearchCV(
        _LogisticRegressionWithCounts(),
        {"C": [0.01, 1.0]},
        scoring={"tail": tail_accuracy_scorer, "few": few_shot_accuracy_scorer},
        refit="tail",
        cv=3,
    )
    with pytest.warns(UserWarning, match="non-finite"):
        search.fit(X, y)
    tail = search.cv_results_["mean_test_tail"]
    assert np.all((tail >= 0) & (tail <= 1))
    assert search.best_params_["C"] == [0.01, 1.0][int(np.argmax(tail))]
    # Every class has >= 20 training examples per fold: few-shot is empty.
    assert np.all(np.isnan(search.cv_results_["mean_test_few"]))


def test_scorer_needs_class_counts(imbalanced):
    X, y = imbalanced
    est = LogisticRegression().fit(X, y)
    with pytest.raises(AttributeError, match="no class_counts_"):
        few_shot_accuracy_scorer(est, X, y)


def test_scorer_unseen_test_class_has_zero_count(imbalanced):
    X, y = imbalanced
    keep = y != 2
    est = _LogisticRegressionWithCounts().fit(X[keep], y[keep])
    # Class 2 never predicted: few-shot accuracy 0 (only class 2 is few-shot).
    assert make_shot_scorer("few")(est, X, y) == 0.0


def test_make_shot_scorer_validation():
    assert repr(make_shot_scorer("head", many=50, few=5)) == (
        "make_shot_scorer(group='head', many=50, few=5)"
    )
    with pytest.raises(ValueError, match="group must be one of"):
        make_shot_scorer("rare")
    with pytest.raises(ValueError, match="few must be <= many"):
        make_shot_scorer("few", many=10, few=20)


def test_shot_scorer_keeps_unseen_string_labels_whole():
    from sklearn.linear_model import LogisticRegression

    from sklearn_lt.posthoc import LogitAdjustedClassifier

    X = np.arange(40, dtype=float).reshape(-1, 1)
    y = np.array(["ox", "ant"] * 20)
    clf = LogitAdjustedClassifier(LogisticRegression(), tau=0.0).fit(X, y)
    y_test = np.array(["ox", "ant", "horse", "ox"])
    score = make_shot_scorer(group="many", many=5, few=2)(clf, X[:4], y_test)
    assert 0.0 <= score <= 1.0
