"""Loss, validation balanced accuracy and learning rate per epoch."""

from collections.abc import Mapping

import numpy as np
from sklearn.utils._optional_dependencies import check_matplotlib_support

__all__ = ["TrainingCurvesDisplay"]

_REBALANCING_LABEL = "re-balancing starts (DRW/DRS)"


def _history_rows(history):
    """The epochs of a skorch History or a list of dicts, as a list of dicts."""
    if isinstance(history, Mapping) or not hasattr(history, "__iter__"):
        raise ValueError(
            "history must be a skorch History or a list of dicts (one per epoch), "
            f"got {type(history).__name__}."
        )
    rows = list(history)
    if not rows:
        raise ValueError("history is empty: the model was trained for no epoch.")
    for row in rows:
        if not isinstance(row, Mapping):
            raise ValueError(
                "history must be a list of dicts (one per epoch); got an element "
                f"of type {type(row).__name__}."
            )
    if not any("train_loss" in row for row in rows):
        raise ValueError("history has no 'train_loss' entry.")
    return rows


def _series(rows, key):
    """Epochs and values of ``key``, over the epochs that recorded it."""
    epochs, values = [], []
    for i, row in enumerate(rows):
        value = row.get(key)
        if value is not None:
            epochs.append(row.get("epoch", i + 1))
            values.append(float(value))
    return np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)


def _rebalancing_epoch(rows):
    """First epoch whose ``rebalancing`` entry is true, or None."""
    for i, row in enumerate(rows):
        if bool(row.get("rebalancing", False)):
            return row.get("epoch", i + 1)
    return None


class TrainingCurvesDisplay:
    """Loss, validation balanced accuracy and learning rate per epoch.

    The upper axes shows the train loss and, when a validation split was used,
    the validation loss (left y-axis) and validation balanced accuracy (right
    y-axis). A dashed vertical line marks the first epoch trained with class
    re-balancing (the switch of deferred re-weighting or re-sampling, DRW/DRS),
    where the loss usually jumps. A small lower axes shows the learning rate.

    It is recommended to create a display with :meth:`from_estimator`. All
    parameters are stored as attributes.

    Parameters
    ----------
    history : skorch History or list of dict
        One dict per epoch with ``"train_loss"`` and optionally ``"epoch"``
        (1-based, default the position), ``"valid_loss"``,
        ``"valid_balanced_accuracy"``, ``"lr"`` and ``"rebalancing"`` (bool,
        true in the epochs trained with re-balancing). Missing entries are
        skipped.

    name : str, default=None
        Name of the model, used as the title.

    Attributes
    ----------
    train_loss_line_ : matplotlib Line2D
        Train loss per epoch.

    valid_loss_line_ : matplotlib Line2D or None
        Validation loss per epoch, None without validation.

    balanced_accuracy_line_ : matplotlib Line2D or None
        Validation balanced accuracy per epoch, None without validation.

    rebalancing_line_ : matplotlib Line2D or None
        Vertical line at the first epoch with ``rebalancing`` true, None if
        there is none.

    lr_line_ : matplotlib Line2D or None
        Learning rate per epoch, None if the history has no ``"lr"``.

    ax_ : matplotlib Axes
        Axes with the losses.

    ax_accuracy_ : matplotlib Axes or None
        Twin axes of ``ax_`` with the balanced accuracy.

    ax_lr_ : matplotlib Axes or None
        Axes with the learning rate, below ``ax_``.

    figure_ : matplotlib Figure
        Figure containing the plot.

    See Also
    --------
    ClassAccuracyDisplay : Per-class accuracy of the trained model.
    sklearn_lt.schedules.Rebalancing : The callback recording ``rebalancing``.

    Notes
    -----
    The learning rate is drawn on a log scale when it spans more than a factor
    of 10 and stays positive (step decay), on a linear scale otherwise (warm-up,
    cosine decay to zero).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_lt.plotting import TrainingCurvesDisplay
    >>> history = [
    ...     {"epoch": e, "train_loss": 2.0 / e, "valid_loss": 2.2 / e,
    ...      "valid_balanced_accuracy": 0.2 + 0.1 * e, "lr": 0.1,
    ...      "rebalancing": e >= 4}
    ...     for e in range(1, 7)
    ... ]
    >>> disp = TrainingCurvesDisplay(history, name="LDAM-DRW").plot()
    >>> disp.rebalancing_line_.get_xdata()[0]
    4
    >>> disp.valid_loss_line_.get_xydata()[:2].tolist()
    [[1.0, 2.2], [2.0, 1.1]]
    """

    def __init__(self, history, *, name=None):
        self.history = history
        self.name = name

    def plot(self, ax=None, *, name=None):
        """Plot visualization.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes for the losses. If None, a new figure is created with the
            losses above and the learning rate below. Otherwise the learning
            rate axes is carved out of the bottom of ``ax``.

        name : str, default=None
            Title; overrides the ``name`` attribute.

        Returns
        -------
        display : TrainingCurvesDisplay
            Object that stores computed values.
        """
        check_matplotlib_support(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        rows = _history_rows(self.history)
        name = self.name if name is None else name
        lr_epochs, lr = _series(rows, "lr")

        if ax is None:
            if lr.size:
                fig, (ax, ax_lr) = plt.subplots(
                    2,
                    1,
                    sharex=True,
                    height_ratios=[3, 1],
                    layout="constrained",
                )
            else:
                fig, ax = plt.subplots(layout="constrained")
                ax_lr = None
        else:
            fig = ax.figure
            ax_lr = None
            if lr.size:
                from mpl_toolkits.axes_grid1 import make_axes_locatable

                ax_lr = make_axes_locatable(ax).append_axes(
                    "bottom", size="30%", pad=0.15, sharex=ax
                )

        epochs, train_loss = _series(rows, "train_loss")
        (self.train_loss_line_,) = ax.plot(
            epochs, train_loss, color="C0", label="train loss"
        )
        self.valid_loss_line_ = None
        epochs, valid_loss = _series(rows, "valid_loss")
        if valid_loss.size:
            (self.valid_loss_line_,) = ax.plot(
                epochs, valid_loss, color="C1", label="valid loss"
            )
        ax.set_ylabel("loss")
        handles = ax.get_legend_handles_labels()[0]

        self.ax_accuracy_ = self.balanced_accuracy_line_ = None
        epochs, accuracy = _series(rows, "valid_balanced_accuracy")
        if accuracy.size:
            self.ax_accuracy_ = ax.twinx()
            # A twin does not follow the divider that made room for ax_lr.
            self.ax_accuracy_.set_axes_locator(ax.get_axes_locator())
            (self.balanced_accuracy_line_,) = self.ax_accuracy_.plot(
                epochs,
                accuracy,
                color="C2",
                linestyle=":",
                marker="." if accuracy.size <= 50 else None,
                label="valid balanced accuracy",
            )
            self.ax_accuracy_.set_ylim(0, 1.02)
            self.ax_accuracy_.set_ylabel("balanced accuracy")
            handles.append(self.balanced_accuracy_line_)
            ax.set_zorder(self.ax_accuracy_.get_zorder() + 1)
            ax.patch.set_visible(False)

        self.rebalancing_line_ = None
        start = _rebalancing_epoch(rows)
        if start is not None:
            self.rebalancing_line_ = ax.axvline(
                start, color="C3", linestyle="--", lw=1.2, label=_REBALANCING_LABEL
            )
            handles.append(self.rebalancing_line_)
        ax.legend(handles=handles, loc="best", fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

        self.lr_line_ = None
        if ax_lr is not None:
            (self.lr_line_,) = ax_lr.plot(lr_epochs, lr, color="0.3")
            if lr.min() > 0 and lr.max() / lr.min() > 10:
                ax_lr.set_yscale("log")
            if start is not None:
                ax_lr.axvline(start, color="C3", linestyle="--", lw=1.2)
            ax_lr.set_ylabel("lr")
            ax_lr.set_xlabel("epoch")
            ax.tick_params(axis="x", labelbottom=False)
        else:
            ax.set_xlabel("epoch")
        if name is not None:
            ax.set_title(str(name))

        self.ax_ = ax
        self.ax_lr_ = ax_lr
        self.figure_ = fig
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None, name=None):
        """Plot the training curves of a fitted classifier.

        Parameters
        ----------
        estimator : estimator instance
            Fitted classifier with a ``history_`` attribute (sklearn_lt
            classifiers), or a skorch net (``history``).

        ax : matplotlib Axes, default=None
            Axes for the losses; see :meth:`plot`.

        name : str, default=None
            Title. None uses the estimator's class name.

        Returns
        -------
        display : TrainingCurvesDisplay

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from sklearn.datasets import make_classification
        >>> from sklearn_lt import LongTailClassifier
        >>> from sklearn_lt.plotting import TrainingCurvesDisplay
        >>> X, y = make_classification(n_samples=300, n_classes=3, n_informative=4,
        ...                            weights=[0.7, 0.2, 0.1], random_state=0)
        >>> clf = LongTailClassifier(loss="ldam", reweight_schedule="drw",
        ...                          max_epochs=8, validation_fraction=0.2,
        ...                          random_state=0).fit(X, y)
        >>> disp = TrainingCurvesDisplay.from_estimator(clf, name="LDAM-DRW")
        >>> len(disp.train_loss_line_.get_xdata())
        8
        >>> disp.rebalancing_line_.get_xdata()[0]
        7
        """
        check_matplotlib_support(f"{cls.__name__}.from_estimator")
        history = getattr(estimator, "history_", None)
        if history is None:
            history = getattr(estimator, "history", None)
        if history is None:
            raise ValueError(
                f"{type(estimator).__name__} has no training history (history_): "
                "pass a fitted sklearn_lt classifier or skorch net."
            )
        if name is None:
            name = type(estimator).__name__
        return cls(history, name=name).plot(ax=ax)
