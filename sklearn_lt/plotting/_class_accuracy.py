"""Per-class accuracy against training count, head to tail, with shot groups."""

import math
from collections.abc import Mapping

import numpy as np
from sklearn.utils._optional_dependencies import check_matplotlib_support

from .._shot_groups import (
    GROUP_NAMES,
    assign_groups,
    check_group_params,
    class_table,
    counts_by_label,
    fitted_class_counts,
    with_unseen_labels,
)

__all__ = ["ClassAccuracyDisplay"]

# The classes' layout on an axes is reached from the axes through this attribute,
# as pandas reaches a secondary y-axis through ``ax.right_ax``.
_LAYOUT_ATTRIBUTE = "_sklearn_lt_class_layout"


class _ClassLayout:
    """What the first display drawn on an axes set up, shared by its overlays.

    The class order (``position``), the counts axes and line and the group
    lines are drawn once; ``bar_sets``, ``handles`` and ``n_models`` grow with
    each display drawn on the axes.
    """

    def __init__(self, position, ax_counts, counts_line, group_lines):
        self.position = position
        self.ax_counts = ax_counts
        self.counts_line = counts_line
        self.group_lines = group_lines
        self.bar_sets = []
        self.handles = []
        self.n_models = 0


def _as_1d(name, values):
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1d, got an array of shape {array.shape}.")
    return array


class ClassAccuracyDisplay:
    """Per-class accuracy against training count, from head to tail classes.

    Each class is a bar whose height is its accuracy (recall) on the test set;
    the classes are sorted by decreasing number of training examples (head on
    the left, tail on the right). The training counts are drawn as a step line
    on a second, logarithmic y-axis, and the shot groups (many / medium / few,
    or head / middle / tail thirds) as shaded regions separated by dashed
    vertical lines.

    Calling :meth:`plot` with the ``ax`` of a display already drawn overlays
    another model on the same classes, by default as markers and lines so that
    the comparison stays legible; the legend names each model.

    It is recommended to create a display with :meth:`from_estimator` or
    :meth:`from_predictions`. All parameters are stored as attributes.

    Parameters
    ----------
    per_class_accuracy : array-like of shape (n_classes,)
        Accuracy (recall) of each class on the test set, in [0, 1]; NaN for a
        class without test samples (no bar is drawn).

    class_counts : array-like of shape (n_classes,)
        Number of training examples of each class, aligned with
        ``per_class_accuracy``.

    display_labels : array-like of shape (n_classes,) or None
        Name of each class, aligned with ``per_class_accuracy``. If None,
        ``0, ..., n_classes - 1``. Overlaid displays are matched by these names.

    many : float, default=100
        Classes with more than ``many`` training examples are many-shot.

    few : float, default=20
        Classes with fewer than ``few`` training examples are few-shot.

    groups : {"shots", "quantile"}, default="shots"
        ``"shots"`` marks the many / medium / few groups given by ``many`` and
        ``few``; ``"quantile"`` the head / middle / tail thirds of the classes,
        as in :func:`~sklearn_lt.metrics.shot_accuracy`.

    name : str, default=None
        Name of the model, shown in the legend.

    Attributes
    ----------
    bars_ : matplotlib BarContainer or None
        One bar per class, head to tail; None when drawn with ``kind="line"``.

    line_ : matplotlib Line2D or None
        Markers and line of the accuracies; None when drawn with
        ``kind="bar"``.

    counts_line_ : matplotlib Line2D
        Training counts on the logarithmic axis ``ax_counts_``.

    group_lines_ : list of matplotlib Line2D
        Vertical lines at the group boundaries, between the last class of a
        group and the first class of the next.

    ax_ : matplotlib Axes
        Axes with the accuracies.

    ax_counts_ : matplotlib Axes
        Twin axes of ``ax_`` with the training counts on a log scale.

    figure_ : matplotlib Figure
        Figure containing the plot.

    See Also
    --------
    sklearn_lt.metrics.shot_accuracy : Accuracy per shot group.
    sklearn_lt.metrics.long_tail_report : The same per-class numbers as text.
    TrainingCurvesDisplay : Loss and accuracy per epoch.

    Notes
    -----
    The counts axis, the class order and the group boundaries are those of the
    first display drawn on an axes; later displays only add their accuracies.
    A class with zero training examples has no point on the logarithmic counts
    axis.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_lt.plotting import ClassAccuracyDisplay
    >>> disp = ClassAccuracyDisplay(
    ...     per_class_accuracy=[0.5, 0.9, 0.1],
    ...     class_counts=[60, 500, 8],
    ...     display_labels=["cat", "dog", "eel"],
    ...     name="baseline",
    ... ).plot()
    >>> [tick.get_text() for tick in disp.ax_.get_xticklabels()]
    ['dog', 'cat', 'eel']
    >>> disp.bars_.datavalues.tolist()
    [0.9, 0.5, 0.1]
    >>> disp.ax_counts_.get_yscale()
    'log'
    >>> other = ClassAccuracyDisplay([0.6, 0.8, 0.4], [60, 500, 8],
    ...                              ["cat", "dog", "eel"], name="LDAM-DRW")
    >>> other = other.plot(ax=disp.ax_)
    >>> [text.get_text() for text in disp.ax_.get_legend().get_texts()]
    ['baseline (balanced acc. 0.50)', 'LDAM-DRW (balanced acc. 0.60)', 'training count']
    """

    def __init__(
        self,
        per_class_accuracy,
        class_counts,
        display_labels,
        *,
        many=100,
        few=20,
        groups="shots",
        name=None,
    ):
        self.per_class_accuracy = per_class_accuracy
        self.class_counts = class_counts
        self.display_labels = display_labels
        self.many = many
        self.few = few
        self.groups = groups
        self.name = name

    def _validated(self):
        """Accuracies, counts and labels as 1d arrays of equal length."""
        accuracy = _as_1d("per_class_accuracy", self.per_class_accuracy)
        counts = _as_1d("class_counts", self.class_counts)
        n_classes = accuracy.shape[0]
        if n_classes == 0:
            raise ValueError("per_class_accuracy is empty.")
        if self.display_labels is None:
            labels = np.arange(n_classes)
        else:
            labels = _as_1d("display_labels", self.display_labels)
        if counts.shape[0] != n_classes or labels.shape[0] != n_classes:
            raise ValueError(
                "per_class_accuracy, class_counts and display_labels must have "
                f"the same length, got {n_classes}, {counts.shape[0]} and "
                f"{labels.shape[0]}."
            )
        accuracy = accuracy.astype(np.float64)
        counts = counts.astype(np.float64)
        if np.any(~np.isfinite(counts) | (counts < 0)):
            raise ValueError("class_counts must hold finite, non-negative numbers.")
        names = [str(label) for label in labels.tolist()]
        if len(set(names)) != n_classes:
            raise ValueError("display_labels contains duplicates.")
        check_group_params(self.groups, self.many, self.few)
        return accuracy, counts, names

    def plot(self, ax=None, *, name=None, kind=None, max_xticklabels=None):
        """Plot visualization.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on. If None, a new figure and axes is created. If a
            :class:`ClassAccuracyDisplay` was already drawn on ``ax``, this
            display is overlaid on its classes (see ``kind``).

        name : str, default=None
            Name of the model in the legend; overrides the ``name`` attribute.

        kind : {"bar", "line"}, default=None
            Draw the accuracies as bars or as markers joined by a line. None
            draws bars on a fresh axes and lines when overlaying. Bar sets
            drawn on the same axes are placed side by side.

        max_xticklabels : int, default=None
            Largest number of class names on the x-axis; with more classes,
            every k-th class is labelled. None fits the labels to the width of
            the axes.

        Returns
        -------
        display : ClassAccuracyDisplay
            Object that stores computed values.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        if kind not in (None, "bar", "line"):
            raise ValueError(f"kind must be 'bar', 'line' or None, got {kind!r}.")
        accuracy, counts, names = self._validated()
        name = self.name if name is None else name

        if ax is None:
            fig, ax = plt.subplots(layout="constrained")
        else:
            fig = ax.figure
        layout = getattr(ax, _LAYOUT_ATTRIBUTE, None)
        if layout is None:
            layout = self._draw_classes(ax, counts, names, max_xticklabels)
            setattr(ax, _LAYOUT_ATTRIBUTE, layout)
        else:
            missing = set(names) ^ set(layout.position)
            if missing:
                raise ValueError(
                    "The classes differ from those of the display already on ax: "
                    f"{sorted(missing)!r} are not in both."
                )
        self._layout = layout

        position = np.array([layout.position[n] for n in names], dtype=float)
        order = np.argsort(position, kind="stable")
        x, heights = position[order], accuracy[order]
        if kind is None:
            kind = "bar" if layout.n_models == 0 else "line"
        color = f"C{layout.n_models % 10}"
        label = "accuracy" if name is None else str(name)
        if not np.all(np.isnan(heights)):
            label += f" (balanced acc. {np.nanmean(heights):.2f})"

        self.bars_ = self.line_ = None
        if kind == "bar":
            self.bars_ = ax.bar(
                x, heights, width=0.8, color=color, alpha=0.8, label=label, zorder=2
            )
            layout.bar_sets.append(self.bars_)
            _place_bar_sets(layout.bar_sets, x)
        else:
            self.line_ = ax.plot(
                x,
                heights,
                color=color,
                marker="o",
                markersize=5 if len(x) <= 30 else 3,
                linewidth=1.2,
                label=label,
                zorder=3,
            )[0]
        layout.n_models += 1
        layout.handles.append(self.line_ if self.bars_ is None else self.bars_)
        handles = [*layout.handles, layout.counts_line]
        # Above the axes: inside, it would hide bars or the group names.
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0, 1.01),
            ncols=2,
            fontsize="small",
            frameon=False,
            borderaxespad=0,
        )

        self.ax_ = ax
        self.ax_counts_ = layout.ax_counts
        self.counts_line_ = layout.counts_line
        self.group_lines_ = layout.group_lines
        self.figure_ = fig
        return self

    def _draw_classes(self, ax, counts, names, max_xticklabels):
        """Class order, training counts and groups: what overlays share."""
        n_classes = counts.shape[0]
        order = np.argsort(-counts, kind="stable")
        x = np.arange(n_classes)
        sorted_counts = counts[order]

        ax_counts = ax.twinx()
        ax_counts.set_yscale("log")
        (counts_line,) = ax_counts.plot(
            x,
            np.where(sorted_counts > 0, sorted_counts, np.nan),
            drawstyle="steps-mid",
            color="0.3",
            linewidth=1.5,
            label="training count",
        )
        ax_counts.set_ylabel("training examples (log scale)")
        # Draw the accuracy axes over the count axes (its legend stays on top).
        ax.set_zorder(ax_counts.get_zorder() + 1)
        ax.patch.set_visible(False)

        group_of = assign_groups(
            sorted_counts, groups=self.groups, many=self.many, few=self.few
        )
        group_lines = []
        start = 0
        names_of_groups = [g for g in GROUP_NAMES[self.groups] if g in group_of]
        for i, group in enumerate(names_of_groups):
            size = int(np.sum(group_of == group))
            end = start + size
            if i % 2 == 0:
                ax.axvspan(start - 0.5, end - 0.5, color="0.5", alpha=0.08, lw=0)
            ax.text(
                (start + end - 1) / 2,
                0.985,
                f"{group} ({size})",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize="small",
                color="0.25",
            )
            if i > 0:
                group_lines.append(
                    ax.axvline(start - 0.5, color="0.3", linestyle="--", lw=1)
                )
            start = end

        ax.set_xlim(-0.5, n_classes - 0.5)
        ax.set_ylim(0, 1.12)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("accuracy (recall)")
        if self.groups == "shots":
            ax.set_xlabel(
                "classes, by decreasing training count "
                f"(many: > {self.many:g}, few: < {self.few:g})"
            )
        else:
            ax.set_xlabel("classes, by decreasing training count (thirds)")
        sorted_names = [names[i] for i in order]
        _set_class_ticks(ax, sorted_names, max_xticklabels)

        return _ClassLayout(
            position={names[i]: k for k, i in enumerate(order)},
            ax_counts=ax_counts,
            counts_line=counts_line,
            group_lines=group_lines,
        )

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        y_train=None,
        class_counts=None,
        groups="shots",
        many=100,
        few=20,
        name=None,
        ax=None,
        kind=None,
    ):
        """Plot the per-class accuracy of a fitted classifier.

        Parameters
        ----------
        estimator : estimator instance
            Fitted classifier with ``predict`` and ``classes_``. Its training
            counts are taken from ``class_counts_`` (sklearn_lt classifiers and
            :class:`~sklearn_lt.posthoc.LogitAdjustedClassifier` have it)
            unless ``y_train`` or ``class_counts`` is given; any other
            classifier needs one of them. The plot shows ``classes_`` and any
            test class unseen in training (as a class with zero examples).

        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Test input.

        y : array-like of shape (n_samples,)
            Test labels.

        y_train : array-like of shape (n_train_samples,), default=None
            Training labels, from which the class counts are computed.

        class_counts : dict or array-like of shape (n_classes,), default=None
            Training count of each class: a dict ``label -> count`` or an array
            aligned with ``estimator.classes_``.

        groups : {"shots", "quantile"}, default="shots"
            Groups to mark, see :func:`~sklearn_lt.metrics.shot_accuracy`.

        many : float, default=100
            Many-shot threshold.

        few : float, default=20
            Few-shot threshold.

        name : str, default=None
            Name in the legend. None uses the estimator's class name.

        ax : matplotlib Axes, default=None
            Axes to plot on; an axes holding a display overlays this one.

        kind : {"bar", "line"}, default=None
            See :meth:`plot`.

        Returns
        -------
        display : ClassAccuracyDisplay

        See Also
        --------
        ClassAccuracyDisplay.from_predictions : Plot from predicted labels.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import make_classification
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.model_selection import train_test_split
        >>> from sklearn_lt.plotting import ClassAccuracyDisplay
        >>> X, y = make_classification(n_samples=1000, n_classes=4, n_informative=5,
        ...                            weights=[0.02, 0.6, 0.1, 0.28], random_state=0)
        >>> X_train, X_test, y_train, y_test = train_test_split(
        ...     X, y, stratify=y, random_state=0)
        >>> clf = LogisticRegression().fit(X_train, y_train)
        >>> disp = ClassAccuracyDisplay.from_estimator(
        ...     clf, X_test, y_test, y_train=y_train)
        >>> [tick.get_text() for tick in disp.ax_.get_xticklabels()]
        ['1', '3', '2', '0']
        >>> [text.get_text() for text in disp.ax_.texts]
        ['many (2)', 'medium (1)', 'few (1)']
        >>> len(disp.bars_), len(disp.group_lines_)
        (4, 2)
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        if y_train is None and class_counts is None:
            class_counts = fitted_class_counts(estimator)
            if class_counts is None:
                raise ValueError(
                    f"{type(estimator).__name__} has no class_counts_ attribute "
                    "(training count of each class): pass y_train= (the training "
                    "labels) or class_counts=."
                )
        elif class_counts is not None and not isinstance(class_counts, Mapping):
            classes = np.asarray(estimator.classes_)
            counts = np.asarray(class_counts)
            if counts.ndim != 1 or counts.shape[0] != classes.shape[0]:
                raise ValueError(
                    f"class_counts has shape {counts.shape} but the estimator has "
                    f"{classes.shape[0]} classes; pass counts aligned with "
                    "estimator.classes_, or a dict."
                )
            class_counts = counts_by_label(classes, counts)
        y_pred = estimator.predict(X)
        if name is None:
            name = type(estimator).__name__
        labels = getattr(estimator, "classes_", None)
        if labels is not None:
            # Also show test classes unseen in training (zero training examples).
            labels = with_unseen_labels(labels, y)
        return cls._from_labels(
            y,
            y_pred,
            y_train=y_train,
            class_counts=class_counts,
            labels=labels,
            groups=groups,
            many=many,
            few=few,
            name=name,
            ax=ax,
            kind=kind,
        )

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_pred,
        *,
        y_train=None,
        class_counts=None,
        labels=None,
        groups="shots",
        many=100,
        few=20,
        name=None,
        ax=None,
        kind=None,
    ):
        """Plot the per-class accuracy of predicted labels.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.

        y_pred : array-like of shape (n_samples,)
            Predicted labels.

        y_train : array-like of shape (n_train_samples,), default=None
            Training labels, from which the class counts are computed. Exactly
            one of ``y_train`` and ``class_counts`` must be given.

        class_counts : dict or array-like of shape (n_labels,), default=None
            Training count of each class, as in
            :func:`~sklearn_lt.metrics.shot_accuracy`.

        labels : array-like of shape (n_labels,), default=None
            Classes to plot, as in :func:`~sklearn_lt.metrics.shot_accuracy`.

        groups : {"shots", "quantile"}, default="shots"
            Groups to mark.

        many : float, default=100
            Many-shot threshold.

        few : float, default=20
            Few-shot threshold.

        name : str, default=None
            Name in the legend.

        ax : matplotlib Axes, default=None
            Axes to plot on; an axes holding a display overlays this one.

        kind : {"bar", "line"}, default=None
            See :meth:`plot`.

        Returns
        -------
        display : ClassAccuracyDisplay

        See Also
        --------
        ClassAccuracyDisplay.from_estimator : Plot from a fitted classifier.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn_lt.plotting import ClassAccuracyDisplay
        >>> y_train = ["cat"] * 150 + ["dog"] * 50 + ["eel"] * 5
        >>> y_true = ["cat", "cat", "dog", "dog", "eel", "eel"]
        >>> y_pred = ["cat", "cat", "dog", "cat", "cat", "cat"]
        >>> disp = ClassAccuracyDisplay.from_predictions(
        ...     y_true, y_pred, y_train=y_train, name="baseline")
        >>> disp.bars_.datavalues.tolist()
        [1.0, 0.5, 0.0]
        >>> [line.get_xdata()[0] for line in disp.group_lines_]
        [0.5, 1.5]
        """
        check_matplotlib_support(f"{cls.__name__}.from_predictions")
        return cls._from_labels(
            y_true,
            y_pred,
            y_train=y_train,
            class_counts=class_counts,
            labels=labels,
            groups=groups,
            many=many,
            few=few,
            name=name,
            ax=ax,
            kind=kind,
        )

    @classmethod
    def _from_labels(
        cls,
        y_true,
        y_pred,
        *,
        y_train,
        class_counts,
        labels,
        groups,
        many,
        few,
        name,
        ax,
        kind,
    ):
        if (y_train is None) == (class_counts is None):
            raise ValueError(
                "The plot needs the training count of each class: pass exactly one "
                "of y_train (the training labels) and class_counts."
            )
        check_group_params(groups, many, few)
        labels, train_counts, _, recall = class_table(
            y_true, y_pred, class_counts=class_counts, y_train=y_train, labels=labels
        )
        disp = cls(
            recall,
            train_counts,
            labels,
            many=many,
            few=few,
            groups=groups,
            name=name,
        )
        return disp.plot(ax=ax, kind=kind)


def _place_bar_sets(bar_sets, x):
    """Put the bar sets of one axes side by side around each class position."""
    n_sets = len(bar_sets)
    width = 0.8 / n_sets
    for i, bars in enumerate(bar_sets):
        offset = (i - (n_sets - 1) / 2) * width
        for rect, center in zip(bars.patches, x, strict=True):
            rect.set_x(center + offset - width / 2)
            rect.set_width(width)


def _set_class_ticks(ax, names, max_xticklabels):
    """Class names under their positions, thinned to fit the axes width."""
    n_classes = len(names)
    if max_xticklabels is None:
        width = ax.get_position().width * ax.figure.get_figwidth()
        max_xticklabels = max(2, int(width / 0.17))
    step = max(1, math.ceil(n_classes / max_xticklabels))
    ticks = np.arange(0, n_classes, step)
    shown = [names[i] for i in ticks]
    ax.set_xticks(ticks, shown)
    if step > 1:
        ax.set_xticks(np.arange(n_classes), minor=True)
    width = ax.get_position().width * ax.figure.get_figwidth()
    # About 0.09 inch per character of a small font, plus a gap per label.
    horizontal = sum(len(s) * 0.09 + 0.1 for s in shown) < width
    ax.tick_params(
        axis="x",
        labelrotation=0 if horizontal else 90,
        labelsize="medium" if len(shown) <= 12 else "small",
    )
