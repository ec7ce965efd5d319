"""Save and load fitted classifiers without pickle.

``pickle`` (and ``joblib``) files can run arbitrary code when loaded, so they must
only be loaded from trusted sources. :func:`save_model` writes a fitted
:class:`~sklearn_lt.LongTailClassifier` or
:class:`~sklearn_lt.LongTailImageClassifier` as plain data: tensors (the
network's and the loss's state), and the estimator's parameters, labels and
training history as JSON text. :func:`load_model` reads it back with
``torch.load(weights_only=True)``, which refuses anything but tensors and basic
containers, then rebuilds the estimator from its parameters. A model saved on a
GPU loads on the CPU (or any ``device``).

Only built-in losses (given by name) and built-in networks can be saved this
way; an estimator with a custom ``module`` or loss class needs pickle.
"""

import json
import pickle

import numpy as np
import scipy.sparse as sp
import torch
from skorch.history import History

from .classifiers import LongTailClassifier, LongTailImageClassifier
from .classifiers._retraining import make_retrained_head, retrained_method

__all__ = ["load_model", "save_model"]

_FORMAT = "sklearn_lt.model"
_FORMAT_VERSION = 1
_ESTIMATORS = {
    cls.__name__: cls for cls in (LongTailClassifier, LongTailImageClassifier)
}


def _json_params(estimator):
    params = estimator.get_params(deep=False)
    if params.get("module") is not None or not isinstance(params.get("loss"), str):
        raise ValueError(
            "save_model stores built-in losses and networks only; this estimator "
            "uses a custom `module` or loss class. Use pickle or joblib instead "
            "(and load such files only from trusted sources)."
        )
    if not isinstance(params.get("random_state"), int | type(None)):
        # A RandomState instance only matters for training; keep the file plain.
        params["random_state"] = None
    params["device"] = str(params["device"])
    params["accelerator"] = None  # a training-time object, not model state
    for key in ("hidden_layer_sizes", "image_shape"):
        if params.get(key) is not None:
            params[key] = [int(v) for v in params[key]]
    if not isinstance(params.get("prediction_prior"), str | type(None)):
        params["prediction_prior"] = [float(v) for v in params["prediction_prior"]]
    try:
        return json.dumps(params)
    except TypeError as exc:
        raise ValueError(
            f"Cannot store the estimator's parameters as JSON: {exc}"
        ) from exc


def _to_cpu(value):
    if torch.is_tensor(value):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value


def save_model(estimator, path):
    """Write a fitted classifier to ``path`` as tensors and JSON (no pickle).

    Parameters
    ----------
    estimator : LongTailClassifier or LongTailImageClassifier
        A fitted estimator with a built-in loss and network.
    path : str or path-like
        Destination file (conventionally ``*.pt``).

    Raises
    ------
    ValueError
        If the estimator is not fitted, is of another type, or uses a custom
        ``module`` or loss class.

    See Also
    --------
    load_model : Read the file back.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_lt import LongTailClassifier
    >>> from sklearn_lt.persistence import load_model, save_model
    >>> X, y = make_classification(n_samples=200, random_state=0)
    >>> clf = LongTailClassifier(max_epochs=3, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
    >>> save_model(clf, path)
    >>> loaded = load_model(path)
    >>> bool(np.array_equal(loaded.predict_proba(X), clf.predict_proba(X)))
    True
    """
    name = type(estimator).__name__
    if name not in _ESTIMATORS or type(estimator) is not _ESTIMATORS[name]:
        raise ValueError(f"save_model supports {sorted(_ESTIMATORS)}; got {name}.")
    if not hasattr(estimator, "net_"):
        raise ValueError("The estimator is not fitted; call fit before save_model.")
    classes = estimator.classes_
    fitted = {
        "classes": classes.tolist(),
        "classes_dtype": classes.dtype.str,
        "class_counts": estimator.class_counts_.tolist(),
        "class_counts_dtype": estimator.class_counts_.dtype.str,
        "max_epochs": int(estimator.max_epochs_),
        "mixup": estimator.mixup_,
        "n_features_in": int(estimator.n_features_in_),
        "feature_names_in": (
            estimator.feature_names_in_.tolist()
            if hasattr(estimator, "feature_names_in_")
            else None
        ),
        "image_shape": list(getattr(estimator, "image_shape_", ()) or ()),
    }
    net = estimator.net_
    payload = {
        "format": _FORMAT,
        "format_version": _FORMAT_VERSION,
        "estimator": name,
        "params": _json_params(estimator),
        "fitted": json.dumps(fitted),
        "history": json.dumps(list(net.history)),
        "module_state": {k: v.cpu() for k, v in net.module_.state_dict().items()},
        "criterion_state": {k: v.cpu() for k, v in net.criterion_.state_dict().items()},
        "optimizer_state": _to_cpu(net.optimizer_.state_dict()),
    }
    if hasattr(estimator, "retrained_head_"):  # classifier_retraining
        head = estimator.retrained_head_
        payload["retraining"] = {
            "method": retrained_method(head),
            "state": {k: v.cpu() for k, v in head.state_dict().items()},
            "epochs": int(estimator.retraining_epochs_),
            "history": json.dumps(list(estimator.retraining_history_)),
        }
    torch.save(payload, path)


def load_model(path, *, device="cpu"):
    """Load a classifier written by :func:`save_model`, without running code.

    Parameters
    ----------
    path : str or path-like
        File written by :func:`save_model`.
    device : str, default="cpu"
        Device for the network (``"cpu"``, ``"cuda"``, ...). A model trained on
        a GPU loads on the CPU. The estimator's ``device`` parameter (used by
        the next ``fit``) is kept as saved.

    Returns
    -------
    estimator : LongTailClassifier or LongTailImageClassifier
        Fitted, with the same predictions as the saved estimator.

    Raises
    ------
    ValueError
        If the file is not a sklearn_lt model file.

    See Also
    --------
    save_model : Write the file.

    Notes
    -----
    The file is read with ``torch.load(weights_only=True)``: it can hold only
    tensors, numbers, strings and containers, so a crafted file cannot execute
    code while loading. The estimator class is chosen from a fixed list by name.

    Examples
    --------
    See :func:`save_model`.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError) as exc:
        raise ValueError(
            f"{path!s} is not a model file written by save_model, or it is damaged "
            "(it was read with weights_only=True, which refuses anything but "
            f"tensors and plain data): {type(exc).__name__}."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path!s} is not a model file written by save_model.")
    if payload.get("format_version") != _FORMAT_VERSION:
        raise ValueError(
            f"{path!s} has format version {payload.get('format_version')}; this "
            f"version of sklearn_lt reads version {_FORMAT_VERSION}."
        )
    try:
        return _rebuild(payload, device)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{path!s} is a damaged model file: {type(exc).__name__}: {exc}"
        ) from exc


def _rebuild(payload, device):
    estimator_class = _ESTIMATORS.get(payload["estimator"])
    if estimator_class is None:
        raise ValueError(f"unknown estimator {payload['estimator']!r}")
    params = json.loads(payload["params"])
    for key in ("hidden_layer_sizes", "image_shape"):
        if params.get(key) is not None:
            params[key] = tuple(params[key])
    estimator = estimator_class(**params)
    fitted = json.loads(payload["fitted"])
    estimator.classes_ = np.array(
        fitted["classes"], dtype=np.dtype(fitted["classes_dtype"])
    )
    estimator.class_counts_ = np.array(
        fitted["class_counts"], dtype=np.dtype(fitted.get("class_counts_dtype", "<i8"))
    )
    history = json.loads(payload["history"])
    estimator.max_epochs_ = fitted.get("max_epochs", len(history))
    # Files written before mixup="auto" existed hold an explicit method.
    estimator.mixup_ = fitted.get("mixup", estimator.mixup)
    estimator.n_features_in_ = fitted["n_features_in"]
    if fitted["feature_names_in"] is not None:
        estimator.feature_names_in_ = np.array(fitted["feature_names_in"], dtype=object)
    input_shape = (estimator.n_features_in_,)
    if fitted["image_shape"]:
        estimator.image_shape_ = tuple(fitted["image_shape"])
        input_shape = estimator.image_shape_
    estimator.device_ = torch.device(device)
    state = payload["module_state"]
    if "scale" in state and "mean" not in state:
        # Standardized by scale only: the model was fitted on wide sparse data.
        like = sp.csr_matrix((1, *input_shape), dtype=np.float32)
    else:
        like = np.zeros((1, *input_shape), dtype=np.float32)
    net = estimator._new_net(like)
    net.initialize()
    net.module_.load_state_dict(payload["module_state"])
    criterion_state = dict(payload["criterion_state"])
    if "weight" not in net.criterion_.state_dict():
        # Files written before losses without re-weighting dropped their
        # all-ones weight buffer.
        criterion_state.pop("weight", None)
    net.criterion_.load_state_dict(criterion_state)
    # The optimizer state (momentum, initial learning rates) lets warm_start
    # continue where training stopped.
    net.optimizer_.load_state_dict(payload["optimizer_state"])
    net.history = History(history)
    estimator.net_ = net
    estimator.history_ = net.history
    if "retraining" in payload:
        _rebuild_retraining(estimator, payload["retraining"], device)
    return estimator


def _rebuild_retraining(estimator, retraining, device):
    state = retraining["state"]
    n_classes = estimator.classes_.size
    weight = state.get("weight")
    n_features = 0 if weight is None else weight.shape[1]
    head = make_retrained_head(
        retraining["method"], n_features, n_classes, state.get("weight_norms")
    )
    head.load_state_dict(state)
    estimator.retrained_head_ = head.requires_grad_(False).to(device)
    estimator.retraining_epochs_ = retraining["epochs"]
    estimator.retraining_history_ = History(json.loads(retraining["history"]))
