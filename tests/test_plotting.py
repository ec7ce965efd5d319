"""Tests for sklearn_lt.plotting: figures render headless with the right elements."""

import sys

import matplotlib
import numpy as np
import pytest
import skorch

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import recall_score

from sklearn_lt.plotting import ClassAccuracyDisplay, TrainingCurvesDisplay

# Unsorted on purpose: head to tail is c1 (500), c3 (150), c0 (100), c5 (50),
# c2 (20), c6 (19), c4 (5).
COUNTS = np.array([100, 500, 20, 150, 5, 50, 19])
ACCURACY = np.array([0.6, 0.9, 0.4, 0.8, 0.1, 0.5, 0.3])
LABELS = np.array([f"c{i}" for i in range(7)])
HEAD_TO_TAIL = ["c1", "c3", "c0", "c5", "c2", "c6", "c4"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _heights(bars):
    return [rect.get_height() for rect in bars.patches]


def _tick_texts(ax):
    return [tick.get_text() for tick in ax.get_xticklabels()]


def _legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _boundaries(disp):
    return [line.get_xdata()[0] for line in disp.group_lines_]


def _history(n_epochs=8, start=6, validation=True, rebalancing=True):
    rows = []
    for epoch in range(1, n_epochs + 1):
        row = {"epoch": epoch, "train_loss": 3.0 / epoch, "lr": 0.1 / epoch}
        if validation:
            row["valid_loss"] = 4.0 / epoch
            row["valid_balanced_accuracy"] = epoch / (n_epochs + 1)
        if rebalancing:
            row["rebalancing"] = epoch >= start
        rows.append(row)
    return rows


class _FittedWithCounts:
    """The surface of a fitted sklearn_lt classifier that the plots use."""

    def __init__(self, classes, counts, predictions):
        self.classes_ = np.asarray(classes)
        self.class_counts_ = np.asarray(counts)
        self.predictions = np.asarray(predictions)

    def predict(self, X):
        return self.predictions[: len(X)]


# --------------------------------------------------------------------------- #
# ClassAccuracyDisplay
# --------------------------------------------------------------------------- #


def test_bars_sorted_head_to_tail():
    disp = ClassAccuracyDisplay(ACCURACY, COUNTS, LABELS, name="model").plot()
    order = np.argsort(-COUNTS, kind="stable")
    assert len(disp.bars_.patches) == len(LABELS)
    assert _heights(disp.bars_) == pytest.approx(ACCURACY[order])
    assert _tick_texts(disp.ax_) == HEAD_TO_TAIL
    assert disp.line_ is None
    assert disp.figure_ is disp.ax_.figure


def test_counts_on_log_axis():
    disp = ClassAccuracyDisplay(ACCURACY, COUNTS, LABELS).plot()
    assert disp.ax_counts_.get_yscale() == "log"
    assert disp.ax_.get_yscale() == "linear"
    np.testing.assert_array_equal(disp.counts_line_.get_ydata(), np.sort(COUNTS)[::-1])
    np.testing.assert_array_equal(disp.counts_line_.get_xdata(), np.arange(7))
    assert "log" in disp.ax_counts_.get_ylabel()


def test_shot_group_boundaries():
    # many (> 100): c1, c3; medium (20..100): c0, c5, c2; few (< 20): c6, c4.
    disp = ClassAccuracyDisplay(ACCURACY, COUNTS, LABELS).plot()
    assert _boundaries(disp) == [1.5, 4.5]
    texts = [t.get_text() for t in disp.ax_.texts]
    assert texts == ["many (2)", "medium (3)", "few (2)"]


def test_shot_group_boundaries_follow_thresholds():
    disp = ClassAccuracyDisplay(ACCURACY, COUNTS, LABELS, many=40, few=10).plot()
    assert _boundaries(disp) == [3.5, 5.5]  # many: > 40, few: < 10


def test_quantile_group_boundaries():
    disp = ClassAccuracyDisplay(
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        [60, 50, 40, 30, 20, 10],
        list("abcdef"),
        groups="quantile",
    ).plot()
    assert _boundaries(disp) == [1.5, 3.5]
    assert [t.get_text() for t in disp.ax_.texts] == [
        "head (2)",
        "middle (2)",
        "tail (2)",
    ]


def test_no_boundary_for_a_single_group():
    disp = ClassAccuracyDisplay([0.5, 0.7], [300, 200], ["a", "b"]).plot()
    assert disp.group_lines_ == []


def test_nan_accuracy_gives_an_empty_bar():
    disp = ClassAccuracyDisplay([0.5, np.nan, 1.0], [30, 20, 10], None).plot()
    assert len(disp.bars_.patches) == 3
    assert np.isnan(_heights(disp.bars_)[1])
    assert _tick_texts(disp.ax_) == ["0", "1", "2"]


def test_two_models_overlaid_with_legend():
    first = ClassAccuracyDisplay(ACCURACY, COUNTS, LABELS, name="CE").plot()
    # The second model lists its classes in another order: matched by name.
    reverse = slice(None, None, -1)
    second_accuracy = np.linspace(0.2, 0.8, 7)
    second = ClassAccuracyDisplay(
        second_accuracy[reverse], COUNTS[reverse], LABELS[reverse], name="LDAM-DRW"
    ).plot(ax=first.ax_)
    assert second.ax_ is first.ax_
    assert second.ax_counts_ is first.ax_counts_
    assert second.bars_ is None
    order = np.argsort(-COUNTS, kind="stable")
    np.testing.assert_allclose(second.line_.get_ydata(), second_accuracy[order])
    np.testing.assert_array_equal(second.line_.get_xdata(), np.arange(7))
    texts = _legend_texts(first.ax_)
    assert len(texts) == 3
    assert texts[0].startswith("CE (balanced acc. 0.51")
    assert texts[1].startswith("LDAM-DRW (balanced acc. 0.50")
    assert texts[2] == "training count"
    # The classes, count axis and boundaries are drawn once.
    assert len(first.ax_.figure.axes) == 2
    assert len(first.ax_.lines) == 3  # two boundaries and the second model


def test_overlaid_bar_sets_side_by_side():
    first = ClassAccuracyDisplay(ACCURACY, COUNTS, LABELS, name="a").plot()
    second = ClassAccuracyDisplay(ACCURACY / 2, COUNTS, LABELS, name="b").plot(
        ax=first.ax_, kind="bar"
    )
    for bars, offset in ((first.bars_, -0.2), (second.bars_, 0.2)):
        centers = [r.get_x() + r.get_width() / 2 for r in bars.patches]
        np.testing.assert_allclose(centers, np.arange(7) + offset)
        np.testing.assert_allclose([r.get_width() for r in bars.patches], 0.4)
    assert _legend_texts(first.ax_)[:2] == [
        "a (balanced acc. 0.51)",
        "b (balanced acc. 0.26)",
    ]


def test_overlay_with_other_classes_raises():
    first = ClassAccuracyDisplay(ACCURACY, COUNTS, LABELS).plot()
    other = ClassAccuracyDisplay([0.5, 0.5], [10, 5], ["c0", "zz"])
    with pytest.raises(ValueError, match="classes differ"):
        other.plot(ax=first.ax_)


def test_many_classes_thin_the_tick_labels():
    n_classes = 100
    counts = np.arange(n_classes, 0, -1) * 5
    labels = [f"class_{i:03d}" for i in range(n_classes)]
    disp = ClassAccuracyDisplay(np.full(n_classes, 0.5), counts, labels).plot()
    texts = _tick_texts(disp.ax_)
    assert 2 <= len(texts) < 40
    step = n_classes // len(texts) + (n_classes % len(texts) > 0)
    assert texts == labels[::step]
    assert disp.ax_.get_xticklabels()[0].get_rotation() == 90
    assert len(disp.bars_.patches) == n_classes

    disp = ClassAccuracyDisplay(np.full(n_classes, 0.5), counts, labels).plot(
        max_xticklabels=10
    )
    assert _tick_texts(disp.ax_) == labels[::10]


def test_few_short_labels_stay_horizontal():
    disp = ClassAccuracyDisplay([0.5, 0.6, 0.7], [30, 20, 10], None).plot()
    assert disp.ax_.get_xticklabels()[0].get_rotation() == 0


def test_from_estimator_with_class_counts_attribute():
    classes = np.array(["a", "b", "c"])
    y_true = np.array(["a", "a", "b", "b", "c", "c"])
    y_pred = np.array(["a", "a", "b", "a", "a", "c"])
    estimator = _FittedWithCounts(classes, [10, 300, 50], y_pred)
    X = np.zeros((6, 2))
    disp = ClassAccuracyDisplay.from_estimator(estimator, X, y_true)
    assert _tick_texts(disp.ax_) == ["b", "c", "a"]
    assert _heights(disp.bars_) == pytest.approx([0.5, 0.5, 1.0])
    assert _boundaries(disp) == [0.5, 1.5]
    assert _legend_texts(disp.ax_)[0].startswith("_FittedWithCounts")
    np.testing.assert_array_equal(disp.class_counts, [10, 300, 50])

    # class_counts, given as an array aligned with classes_, wins.
    disp = ClassAccuracyDisplay.from_estimator(
        estimator, X, y_true, class_counts=[300, 10, 50], name="other"
    )
    assert _tick_texts(disp.ax_) == ["a", "c", "b"]
    assert _legend_texts(disp.ax_)[0].startswith("other")


def test_from_estimator_shows_test_classes_unseen_in_training():
    estimator = _FittedWithCounts(["a", "b"], [50, 5], ["a", "b", "a"])
    disp = ClassAccuracyDisplay.from_estimator(estimator, np.zeros((3, 1)), list("abc"))
    assert _tick_texts(disp.ax_) == ["a", "b", "c"]
    assert _heights(disp.bars_) == pytest.approx([1.0, 1.0, 0.0])
    counts = disp.counts_line_.get_ydata()
    assert counts[:2].tolist() == [50, 5] and np.isnan(counts[2])  # log: no zero


def test_from_estimator_with_y_train_for_a_scikit_learn_classifier():
    X, y = make_classification(
        n_samples=600,
        n_classes=4,
        n_informative=5,
        weights=[0.1, 0.55, 0.05, 0.3],
        random_state=0,
    )
    X_train, X_test, y_train, y_test = X[:400], X[400:], y[:400], y[400:]
    clf = LogisticRegression().fit(X_train, y_train)
    disp = ClassAccuracyDisplay.from_estimator(
        clf, X_test, y_test, y_train=y_train, groups="quantile"
    )
    counts = np.bincount(y_train)
    order = np.argsort(-counts, kind="stable")
    recall = recall_score(y_test, clf.predict(X_test), average=None)
    assert _heights(disp.bars_) == pytest.approx(recall[order])
    assert _tick_texts(disp.ax_) == [str(c) for c in order]
    assert _legend_texts(disp.ax_)[0].startswith("LogisticRegression")

    # A second model overlaid through from_estimator.
    second = ClassAccuracyDisplay.from_estimator(
        LogisticRegression(class_weight="balanced").fit(X_train, y_train),
        X_test,
        y_test,
        y_train=y_train,
        name="balanced",
        ax=disp.ax_,
    )
    assert second.line_ is not None
    assert [t.split(" ")[0] for t in _legend_texts(disp.ax_)] == [
        "LogisticRegression",
        "balanced",
        "training",
    ]


def test_from_estimator_without_counts_raises():
    X, y = make_classification(n_samples=60, random_state=0)
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=r"no class_counts_.*y_train"):
        ClassAccuracyDisplay.from_estimator(clf, X, y)
    with pytest.raises(ValueError, match="pass exactly one of y_train"):
        ClassAccuracyDisplay.from_estimator(clf, X, y, y_train=y, class_counts=[1, 2])
    with pytest.raises(ValueError, match=r"aligned with estimator\.classes_"):
        ClassAccuracyDisplay.from_estimator(clf, X, y, class_counts=[1, 2, 3])


def test_from_predictions():
    y_train = ["cat"] * 150 + ["dog"] * 50 + ["eel"] * 5
    y_true = ["cat", "cat", "dog", "dog", "eel", "eel"]
    y_pred = ["cat", "cat", "dog", "cat", "cat", "eel"]
    disp = ClassAccuracyDisplay.from_predictions(
        y_true, y_pred, y_train=y_train, name="m"
    )
    assert _tick_texts(disp.ax_) == ["cat", "dog", "eel"]
    assert _heights(disp.bars_) == pytest.approx([1.0, 0.5, 0.5])
    assert _boundaries(disp) == [0.5, 1.5]
    same = ClassAccuracyDisplay.from_predictions(
        y_true, y_pred, class_counts={"cat": 150, "dog": 50, "eel": 5}
    )
    assert _heights(same.bars_) == _heights(disp.bars_)


def test_from_predictions_needs_exactly_one_count_source():
    with pytest.raises(ValueError, match="training count of each class"):
        ClassAccuracyDisplay.from_predictions([0, 1], [0, 1])
    with pytest.raises(ValueError, match="exactly one"):
        ClassAccuracyDisplay.from_predictions(
            [0, 1], [0, 1], y_train=[0, 1], class_counts=[1, 1]
        )


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="same length, got 3, 2 and 3"):
        ClassAccuracyDisplay([0.1, 0.2, 0.3], [5, 6], ["a", "b", "c"]).plot()
    with pytest.raises(ValueError, match="same length, got 2, 2 and 3"):
        ClassAccuracyDisplay([0.1, 0.2], [5, 6], ["a", "b", "c"]).plot()
    with pytest.raises(ValueError, match="different lengths"):
        ClassAccuracyDisplay.from_predictions([0, 1, 1], [0, 1], y_train=[0, 1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"class_counts": [5, -1]}, "non-negative"),
        ({"display_labels": ["a", "a"]}, "duplicates"),
        ({"groups": "deciles"}, "groups must be one of"),
        ({"few": 200}, "few must be <= many"),
    ],
)
def test_invalid_display_parameters(kwargs, match):
    params = {
        "per_class_accuracy": [0.5, 0.5],
        "class_counts": [5, 1],
        "display_labels": ["a", "b"],
        **kwargs,
    }
    disp = ClassAccuracyDisplay(**params)
    with pytest.raises(ValueError, match=match):
        disp.plot()
    with pytest.raises(ValueError, match="kind"):
        ClassAccuracyDisplay([0.5], [1], None).plot(kind="pie")


# --------------------------------------------------------------------------- #
# TrainingCurvesDisplay
# --------------------------------------------------------------------------- #


def test_training_curves_lines():
    history = _history()
    disp = TrainingCurvesDisplay(history, name="LDAM-DRW").plot()
    epochs = np.arange(1, 9)
    np.testing.assert_array_equal(disp.train_loss_line_.get_xdata(), epochs)
    np.testing.assert_allclose(disp.train_loss_line_.get_ydata(), 3.0 / epochs)
    np.testing.assert_allclose(disp.valid_loss_line_.get_ydata(), 4.0 / epochs)
    np.testing.assert_allclose(disp.balanced_accuracy_line_.get_ydata(), epochs / 9)
    assert disp.balanced_accuracy_line_.axes is disp.ax_accuracy_
    np.testing.assert_allclose(disp.lr_line_.get_ydata(), 0.1 / epochs)
    assert disp.lr_line_.axes is disp.ax_lr_
    assert disp.ax_lr_.get_yscale() == "linear"  # lr spans a factor 8 only
    assert disp.ax_.get_title() == "LDAM-DRW"
    assert _legend_texts(disp.ax_) == [
        "train loss",
        "valid loss",
        "valid balanced accuracy",
        "re-balancing starts (DRW/DRS)",
    ]


def test_rebalancing_line_at_first_rebalanced_epoch():
    disp = TrainingCurvesDisplay(_history(n_epochs=10, start=7)).plot()
    np.testing.assert_array_equal(disp.rebalancing_line_.get_xdata(), [7, 7])
    assert disp.rebalancing_line_.get_label() == "re-balancing starts (DRW/DRS)"
    # Also marked on the learning-rate axes.
    assert [line.get_xdata()[0] for line in disp.ax_lr_.lines[1:]] == [7]


@pytest.mark.parametrize(
    "history",
    [
        _history(rebalancing=False),  # no "rebalancing" key
        _history(start=100),  # never true
    ],
)
def test_no_rebalancing_line(history):
    disp = TrainingCurvesDisplay(history).plot()
    assert disp.rebalancing_line_ is None
    assert "re-balancing starts (DRW/DRS)" not in _legend_texts(disp.ax_)
    assert disp.ax_.get_title() == ""


def test_training_curves_without_validation_or_lr():
    history = [
        {"train_loss": loss} for loss in (2.0, 1.5, 1.2)
    ]  # no "epoch": positions count from 1
    disp = TrainingCurvesDisplay(history).plot()
    np.testing.assert_array_equal(disp.train_loss_line_.get_xdata(), [1, 2, 3])
    assert disp.valid_loss_line_ is None
    assert disp.balanced_accuracy_line_ is None
    assert disp.ax_accuracy_ is None
    assert disp.lr_line_ is None and disp.ax_lr_ is None
    assert len(disp.figure_.axes) == 1
    assert disp.ax_.get_xlabel() == "epoch"


def test_step_decay_lr_on_log_scale():
    history = _history()
    for row in history[4:]:
        row["lr"] = 1e-4
    disp = TrainingCurvesDisplay(history).plot()
    assert disp.ax_lr_.get_yscale() == "log"


def test_skorch_history_and_given_axes():
    history = skorch.History()
    for row in _history(n_epochs=5, start=3):
        history.new_epoch()
        for key, value in row.items():
            history.record(key, value)
    fig, ax = plt.subplots()
    disp = TrainingCurvesDisplay(history).plot(ax=ax)
    assert disp.ax_ is ax
    assert disp.figure_ is fig
    assert disp.ax_lr_ is not None and disp.ax_lr_ is not ax
    np.testing.assert_array_equal(disp.rebalancing_line_.get_xdata(), [3, 3])
    np.testing.assert_allclose(disp.valid_loss_line_.get_ydata(), 4.0 / np.arange(1, 6))


def test_training_curves_from_estimator():
    class Fitted:
        history_ = _history(start=5)

    disp = TrainingCurvesDisplay.from_estimator(Fitted())
    np.testing.assert_array_equal(disp.rebalancing_line_.get_xdata(), [5, 5])
    assert disp.ax_.get_title() == "Fitted"
    disp = TrainingCurvesDisplay.from_estimator(Fitted(), name="run 1")
    assert disp.ax_.get_title() == "run 1"

    with pytest.raises(ValueError, match="no training history"):
        TrainingCurvesDisplay.from_estimator(LogisticRegression())


@pytest.mark.parametrize(
    "history, match",
    [
        ([], "empty"),
        ({"train_loss": [1.0]}, "list of dicts"),
        ([1.0, 2.0], "list of dicts"),
        ([{"valid_loss": 1.0}], "no 'train_loss'"),
    ],
)
def test_invalid_history(history, match):
    with pytest.raises(ValueError, match=match):
        TrainingCurvesDisplay(history).plot()


# --------------------------------------------------------------------------- #
# Both
# --------------------------------------------------------------------------- #


def test_figures_save_as_png(tmp_path):
    accuracy = ClassAccuracyDisplay(ACCURACY, COUNTS, LABELS, name="a").plot()
    ClassAccuracyDisplay(ACCURACY / 2, COUNTS, LABELS, name="b").plot(ax=accuracy.ax_)
    curves = TrainingCurvesDisplay(_history()).plot()
    for disp, filename in ((accuracy, "accuracy.png"), (curves, "curves.png")):
        path = tmp_path / filename
        disp.figure_.savefig(path)
        assert path.exists()
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_raises_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        ClassAccuracyDisplay([0.5], [1], None).plot()
    with pytest.raises(ImportError, match="pip install matplotlib"):
        ClassAccuracyDisplay.from_predictions([0], [0], y_train=[0])
    with pytest.raises(ImportError, match="pip install matplotlib"):
        TrainingCurvesDisplay(_history()).plot()
