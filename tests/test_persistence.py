"""Saving and loading fitted classifiers: safe files (no code runs on load), pickle.

:func:`sklearn_lt.persistence.save_model` writes tensors and JSON only and
:func:`~sklearn_lt.persistence.load_model` reads them with
``torch.load(weights_only=True)``: a crafted file must never execute code.
"""

import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from sklearn_lt import LongTailClassifier, LongTailImageClassifier
from sklearn_lt.losses import CrossEntropyLoss
from sklearn_lt.persistence import load_model, save_model

FAST = {"max_epochs": 3, "batch_size": 16, "random_state": 0, "device": "cpu"}
TABULAR = {**FAST, "hidden_layer_sizes": (8,)}
IMAGE = {**FAST, "architecture": "cnn", "horizontal_flip": False}


def _data(n_samples=60, n_features=6, seed=0, weights=(0.6, 0.3, 0.1)):
    """Imbalanced shifted blobs with classes 0, 1, 2."""
    rng = np.random.RandomState(seed)
    y = rng.choice(len(weights), size=n_samples, p=weights)
    y[:3] = [0, 1, 2]
    X = rng.normal(size=(n_samples, n_features)) + 1.5 * y[:, None]
    return X, y


def _round_trip(estimator, tmp_path, name="model.pt", **load_kwargs):
    path = tmp_path / name
    save_model(estimator, path)
    return load_model(path, **load_kwargs)


def _assert_same_model(loaded, original, X):
    assert type(loaded) is type(original)
    assert np.array_equal(loaded.predict_proba(X), original.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), original.predict(X))
    np.testing.assert_array_equal(loaded.classes_, original.classes_)
    assert loaded.classes_.dtype == original.classes_.dtype
    np.testing.assert_array_equal(loaded.class_counts_, original.class_counts_)
    assert loaded.n_features_in_ == original.n_features_in_
    assert len(loaded.history_) == len(original.history_)
    assert loaded.history_[:, "train_loss"] == original.history_[:, "train_loss"]


# =====================================================================================
# save_model / load_model round trips
# =====================================================================================


def test_round_trip_string_labels_dataframe_ldam_drw_posthoc(tmp_path):
    X, y = _data()
    labels = np.array(["common", "medium", "rare"])[y]
    frame = pd.DataFrame(X, columns=[f"feature_{i}" for i in range(X.shape[1])])
    clf = LongTailClassifier(
        loss="ldam",
        reweight_schedule="drw",
        deferral_start=0.5,
        posthoc_tau=0.7,
        **TABULAR,
    ).fit(frame, labels)
    weight = clf.net_.criterion_.weight
    assert not torch.equal(weight, torch.ones_like(weight))  # DRW switched on
    loaded = _round_trip(clf, tmp_path)
    _assert_same_model(loaded, clf, frame)
    assert loaded.classes_.dtype.kind == "U"
    np.testing.assert_array_equal(loaded.feature_names_in_, clf.feature_names_in_)
    assert torch.equal(loaded.net_.criterion_.weight, weight)
    assert torch.equal(loaded.net_.criterion_.margins, clf.net_.criterion_.margins)
    assert loaded.posthoc_tau == 0.7
    assert loaded.get_params() == clf.get_params()
    # Feature names are checked as on the original.
    renamed = frame.rename(columns={"feature_0": "other"})
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(renamed)


@pytest.mark.parametrize(
    "params",
    [
        {"loss": "sigmoid_focal", "reweight_schedule": "reweight", "tau_norm": 1.0},
        {"loss": "vs", "validation_fraction": 0.25},
        {"loss": "ce", "reweight_schedule": "drs", "posthoc_tau": 1.0},
        {"loss": "focal", "gamma": 2.0, "optimizer": "adam", "lr": 0.01},
        {"reweight_schedule": "drw", "prediction_prior": np.array([0.5, 0.3, 0.2])},
        {"loss": "ce", "prediction_prior": "train"},
    ],
)
def test_round_trip_other_losses_and_schedules(params, tmp_path):
    X, y = _data()
    clf = LongTailClassifier(**{**TABULAR, **params}).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    _assert_same_model(loaded, clf, X)
    for name, buffer in clf.net_.criterion_.named_buffers():
        assert torch.equal(loaded.net_.criterion_.get_buffer(name), buffer), name


@pytest.mark.parametrize(
    "standardize, centered", [(True, False), (False, False), (True, True)]
)
def test_round_trip_model_fitted_on_sparse_data(
    standardize, centered, tmp_path, monkeypatch
):
    # Scale-only standardization of wide sparse data (no mean buffer), and
    # the full standardization of narrow sparse data, are rebuilt as they were.
    if not centered:
        monkeypatch.setattr(
            "sklearn_lt.classifiers._tabular.SPARSE_CENTERING_MAX_FEATURES", 0
        )
    X, y = _data()
    X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    clf = LongTailClassifier(standardize=standardize, **TABULAR).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    assert (loaded.net_.module_.mean is not None) is centered
    assert (loaded.net_.module_.scale is None) is not standardize
    _assert_same_model(loaded, clf, X)
    np.testing.assert_array_equal(
        loaded.predict_proba(X.toarray()), clf.predict_proba(X.toarray())
    )
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["a", "bb", "ccc"]),
        np.array([False, True, True]),
        np.array([-3, 7, 11]),
        np.array([0.0, 2.0, 4.0]),
        "categorical",
    ],
    ids=["str", "bool", "int", "float", "categorical"],
)
def test_round_trip_keeps_labels_and_their_dtype(labels, tmp_path):
    X, y = _data()
    if isinstance(labels, str):
        target = pd.Series(pd.Categorical(np.array(["lo", "mid", "hi"])[y]))
    else:
        target = labels[y]
    clf = LongTailClassifier(**TABULAR).fit(X, target)
    loaded = _round_trip(clf, tmp_path)
    _assert_same_model(loaded, clf, X)
    assert loaded.predict(X).dtype == clf.predict(X).dtype


@pytest.mark.parametrize("shape", ["flat", "4d"])
def test_round_trip_image_classifier_restores_the_image_shape(shape, tmp_path):
    X, y = _data(n_features=2 * 6 * 6)
    if shape == "4d":
        X = X.reshape(-1, 2, 6, 6)
        params = {}
    else:
        params = {"image_shape": (2, 6, 6)}
    clf = LongTailImageClassifier(loss="ldam", **IMAGE, **params).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    assert loaded.image_shape_ == clf.image_shape_ == (2, 6, 6)
    _assert_same_model(loaded, clf, X)
    with pytest.raises(ValueError):
        loaded.predict(X.reshape(X.shape[0], -1)[:, :-1])


def test_the_file_holds_only_plain_data(tmp_path):
    """A saved model loads with torch's safe loader and holds no pickled objects."""
    X, y = _data()
    path = tmp_path / "model.pt"
    save_model(LongTailClassifier(**TABULAR).fit(X, y), path)
    payload = torch.load(path, map_location="cpu", weights_only=True)

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str | int) and plain(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | float | torch.Tensor)

    assert plain(payload)


def test_loaded_estimator_can_be_refit(tmp_path):
    X, y = _data()
    clf = LongTailClassifier(**TABULAR).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    loaded.fit(X, y)
    assert len(loaded.history_) == 3
    # A cold refit with the same parameters and seed reproduces the original.
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize(
    "cls_params",
    [
        (LongTailClassifier, {**TABULAR, "loss": "ldam", "reweight_schedule": "drw"}),
        (LongTailImageClassifier, IMAGE),
    ],
    ids=["tabular", "image"],
)
def test_loaded_estimator_continues_with_warm_start(cls_params, tmp_path):
    cls, params = cls_params
    X, y = _data(n_features=16)
    clf = cls(**params).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    loaded.set_params(warm_start=True, max_epochs=2)
    loaded.fit(X, y)
    assert len(loaded.history_) == 3 + 2
    assert [row["epoch"] for row in loaded.history_] == [1, 2, 3, 4, 5]
    assert np.isfinite(loaded.predict_proba(X)).all()


def test_round_trip_keeps_the_optimizer_momentum(tmp_path):
    X, y = _data()
    params = {
        **TABULAR,
        "loss": "ce",
        "optimizer": "sgd",
        "lr": 0.1,
        "momentum": 0.9,
        "lr_schedule": "constant",
        "warmup_epochs": 0,
        "max_epochs": 3,
    }
    clf = LongTailClassifier(**params).fit(X, y)
    loaded = _round_trip(clf, tmp_path)
    # The SGD momentum buffers come back with the network, parameter by parameter.
    original_parameters = list(clf.net_.module_.parameters())
    loaded_parameters = list(loaded.net_.module_.parameters())
    for p_original, p_loaded in zip(
        original_parameters, loaded_parameters, strict=True
    ):
        original_state = clf.net_.optimizer_.state[p_original]
        loaded_state = loaded.net_.optimizer_.state[p_loaded]
        assert "momentum_buffer" in loaded_state, "the momentum was not restored"
        assert torch.equal(
            loaded_state["momentum_buffer"], original_state["momentum_buffer"]
        )
        assert not torch.equal(
            original_state["momentum_buffer"], torch.zeros_like(p_original)
        )
    # So continuing the loaded model trains exactly as continuing the original.
    for estimator in (clf, loaded):
        estimator.set_params(warm_start=True, max_epochs=2).fit(X, y)
    np.testing.assert_allclose(
        loaded.predict_proba(X), clf.predict_proba(X), rtol=0, atol=1e-7
    )


def test_model_saved_with_a_cuda_device_parameter_loads_on_cpu(tmp_path):
    X, y = _data()
    clf = LongTailClassifier(**TABULAR).fit(X, y)
    clf.set_params(device="cuda")  # as if trained on a GPU machine
    loaded = _round_trip(clf, tmp_path)
    assert loaded.device == "cuda"  # the parameter is kept as saved
    assert loaded.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in loaded.net_.module_.parameters())
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_model_trained_on_cuda_loads_on_cpu(tmp_path):
    X, y = _data()
    clf = LongTailClassifier(**{**TABULAR, "device": "cuda"}).fit(X, y)
    assert next(clf.net_.module_.parameters()).is_cuda
    loaded = _round_trip(clf, tmp_path, device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.net_.module_.parameters())
    assert all(b.device.type == "cpu" for b in loaded.net_.criterion_.buffers())
    # GPU float32 versus CPU float64 inference: equal up to rounding.
    np.testing.assert_allclose(
        loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    on_gpu = _round_trip(clf, tmp_path, name="gpu.pt", device="cuda")
    assert next(on_gpu.net_.module_.parameters()).is_cuda
    np.testing.assert_allclose(
        on_gpu.predict_proba(X), clf.predict_proba(X), rtol=1e-6, atol=1e-7
    )


# =====================================================================================
# Unsafe, foreign and broken files
# =====================================================================================


class _RunsShell:
    """Unpickling this object would run a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _WritesFile:
    """Unpickling this object would create a file (no shell needed)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _Custom:
    """An innocent custom class: still not plain data."""

    def __init__(self):
        self.value = 3


def _write_crafted(kind, path, marker):
    if kind == "torch_dict_shell":
        payload = {"format": "sklearn_lt.model", "format_version": 1}
        payload["params"] = _RunsShell(marker)
        torch.save(payload, path)
    elif kind == "torch_dict_file":
        torch.save({"format": "sklearn_lt.model", "x": _WritesFile(marker)}, path)
    elif kind == "torch_custom_class":
        torch.save({"format": "sklearn_lt.model", "x": _Custom()}, path)
    elif kind == "raw_pickle":
        path.write_bytes(pickle.dumps(_RunsShell(marker), protocol=2))
    elif kind == "model_with_extra_object":
        X, y = _data()
        save_model(LongTailClassifier(**TABULAR).fit(X, y), path)
        payload = torch.load(path, weights_only=True)
        payload["history"] = _WritesFile(marker)
        torch.save(payload, path)


@pytest.mark.parametrize(
    "kind",
    [
        "torch_dict_shell",
        "torch_dict_file",
        "torch_custom_class",
        "raw_pickle",
        "model_with_extra_object",
    ],
)
def test_a_crafted_file_runs_no_code(kind, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.pt"
    _write_crafted(kind, path, marker)
    assert not marker.exists()
    with pytest.raises((ValueError, pickle.UnpicklingError)):
        load_model(path)
    assert not marker.exists(), "loading the file ran code"


@pytest.mark.parametrize(
    "content",
    [{"a": 1}, [1, 2, 3], torch.zeros(3), {"format": "other", "format_version": 1}],
    ids=["dict", "list", "tensor", "other_format"],
)
def test_a_foreign_torch_file_is_a_value_error(content, tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save(content, path)
    with pytest.raises(ValueError, match="not a model file written by save_model"):
        load_model(path)


def test_a_newer_format_version_is_a_value_error(tmp_path):
    X, y = _data()
    path = tmp_path / "model.pt"
    save_model(LongTailClassifier(**TABULAR).fit(X, y), path)
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(ValueError, match="format version 99"):
        load_model(path)


def _broken_file(kind, path):
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("id,label\n1,cat\n")
    elif kind == "random_bytes":
        path.write_bytes(np.random.RandomState(0).bytes(256))
    elif kind == "empty_zip":
        with zipfile.ZipFile(path, "w"):
            pass
    else:
        X, y = _data()
        save_model(LongTailClassifier(**TABULAR).fit(X, y), path)
        if kind == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        else:  # a model file with a field missing
            payload = torch.load(path, weights_only=True)
            del payload["params"]
            torch.save(payload, path)


@pytest.mark.parametrize(
    "kind",
    ["empty", "text", "random_bytes", "empty_zip", "truncated", "missing_field"],
)
def test_a_broken_file_is_a_clear_value_error(kind, tmp_path):
    """A truncated download or a wrong file gives a ValueError naming the file."""
    path = tmp_path / "broken.pt"
    _broken_file(kind, path)
    with pytest.raises(ValueError, match=r"broken\.pt"):
        load_model(path)


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


# =====================================================================================
# What save_model refuses
# =====================================================================================


class _TinyModule(nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, X):
        return self.head(X)


class _MyLoss(CrossEntropyLoss):
    pass


@pytest.mark.parametrize(
    ("estimator", "pattern"),
    [
        (LongTailClassifier(**TABULAR), "not fitted"),
        (LongTailImageClassifier(**IMAGE), "not fitted"),
        (LongTailClassifier(module=_TinyModule, **FAST), "custom `module`"),
        (LongTailClassifier(loss=_MyLoss, **TABULAR), "custom `module` or loss"),
        (LogisticRegression(), "save_model supports"),
    ],
    ids=["unfitted", "unfitted_image", "custom_module", "custom_loss", "foreign"],
)
def test_save_model_refuses_what_it_cannot_store(estimator, pattern, tmp_path):
    X, y = _data()
    if pattern != "not fitted":
        estimator.fit(X, y)
    path = tmp_path / "model.pt"
    with pytest.raises(ValueError, match=pattern):
        save_model(estimator, path)
    assert not path.exists()


# =====================================================================================
# Pickle
# =====================================================================================


@pytest.mark.parametrize(
    "estimator",
    [
        LongTailClassifier(loss="ldam", reweight_schedule="drw", **TABULAR),
        LongTailClassifier(validation_fraction=0.25, **TABULAR),
        LongTailImageClassifier(augment=True, **IMAGE),
    ],
    ids=["ldam_drw", "validation", "image"],
)
def test_pickle_round_trip_gives_identical_predictions(estimator, tmp_path):
    X, y = _data(n_features=64)  # 8x8 images for the image classifier
    estimator.fit(X, y)
    restored = pickle.loads(pickle.dumps(estimator))
    assert np.array_equal(restored.predict_proba(X), estimator.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), estimator.predict(X))
    assert len(restored.history_) == len(estimator.history_)
    assert restored.get_params() == estimator.get_params()


def _large_problem(n_samples, n_features=50):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(n_samples, n_features))
    y = (X[:, 0] > 0.5).astype(int) + (X[:, 1] > 1.0)
    return X, y


_SMALL_NET = {
    "hidden_layer_sizes": (8,),
    "max_epochs": 1,
    "batch_size": 2048,
    "random_state": 0,
    "device": "cpu",
}


@pytest.mark.parametrize("validation_fraction", [None, 0.2])
def test_pickle_does_not_contain_the_training_data(validation_fraction):
    X, y = _large_problem(20000)
    clf = LongTailClassifier(validation_fraction=validation_fraction, **_SMALL_NET)
    clf.fit(X, y)
    size = len(pickle.dumps(clf))
    assert size < X.astype(np.float32).nbytes / 20, size


@pytest.mark.parametrize("validation_fraction", [None, 0.2])
def test_pickle_size_does_not_grow_with_the_training_set(validation_fraction):
    """Neither X, y, the validation set nor any per-example tensor is kept."""
    sizes = []
    for n_samples in (2000, 20000):
        X, y = _large_problem(n_samples)
        clf = LongTailClassifier(validation_fraction=validation_fraction, **_SMALL_NET)
        sizes.append(len(pickle.dumps(clf.fit(X, y))))
    # 18000 more rows: even one byte per row would add 18 kB.
    assert sizes[1] - sizes[0] < 8000, sizes


def test_a_file_with_the_old_all_ones_loss_weight_still_loads(tmp_path):
    # Before losses without re-weighting dropped their weight buffer, every
    # saved loss had one (all ones); such files must still load.
    X, y = _data()
    clf = LongTailClassifier(**TABULAR).fit(X, y)
    assert clf.net_.criterion_.weight is None
    clf.net_.criterion_.weight = torch.ones(3)
    loaded = _round_trip(clf, tmp_path)
    assert loaded.net_.criterion_.weight is None
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
