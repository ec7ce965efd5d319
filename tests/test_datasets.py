"""Tests for sklearn_lt.datasets: profiles, subsampling, generators, loaders, IDX."""

import ast
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.neighbors import NearestCentroid

import sklearn_lt.datasets as datasets_module
from sklearn_lt.datasets import (
    load_digits_lt,
    load_fashion_mnist,
    load_fashion_mnist_lt,
    long_tailed_counts,
    make_long_tailed,
    make_long_tailed_classification,
    read_idx,
)

CIFAR10_LT_100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
FASHION_MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
REAL_FASHION_MNIST_HOME = Path("/usr/share/datasets/fashion-mnist")


def exp_formula(n_max, n_classes, rho):
    """The exponential profile as written in Cao et al. (2019)."""
    if n_classes == 1:
        return [n_max]
    return [int(n_max * (1 / rho) ** (i / (n_classes - 1))) for i in range(n_classes)]


def step_formula(n_max, n_classes, rho):
    """The step profile, mu = 0.5: the first C // 2 classes keep n_max."""
    n_head = n_classes // 2
    return [n_max] * n_head + [int(n_max / rho)] * (n_classes - n_head)


# --------------------------------------------------------------------------------------
# long_tailed_counts
# --------------------------------------------------------------------------------------


def test_module_does_not_import_torch():
    imported = set()
    package = Path(datasets_module.__file__).parent
    nodes = [
        node
        for path in sorted(package.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
    ]
    for node in nodes:
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported.isdisjoint({"torch", "skorch"})
    assert {"numpy", "sklearn"} <= imported


def test_cifar10_lt_counts_are_exact():
    counts = long_tailed_counts(5000, 10, imbalance_ratio=100, profile="exp")
    assert counts.tolist() == CIFAR10_LT_100
    assert counts.sum() == 12406
    assert counts.dtype == np.int64


def test_cifar_lt_totals():
    assert long_tailed_counts(5000, 10, imbalance_ratio=10).sum() == 20431
    cifar100 = long_tailed_counts(500, 100, imbalance_ratio=100)
    assert cifar100.sum() == 10847
    assert (cifar100[0], cifar100[-1]) == (500, 5)


@pytest.mark.parametrize("n_max", [100, 500, 1000, 5000, 6000])
@pytest.mark.parametrize("n_classes", [2, 3, 10, 100])
@pytest.mark.parametrize("rho", [1, 10, 50, 100])
def test_exp_profile_matches_formula(n_max, n_classes, rho):
    counts = long_tailed_counts(n_max, n_classes, imbalance_ratio=rho, profile="exp")
    assert counts.tolist() == exp_formula(n_max, n_classes, rho)


@pytest.mark.parametrize("n_classes", [2, 3, 9, 10, 100])
@pytest.mark.parametrize("rho", [1, 10, 100])
def test_step_profile_matches_formula(n_classes, rho):
    counts = long_tailed_counts(5000, n_classes, imbalance_ratio=rho, profile="step")
    assert counts.tolist() == step_formula(5000, n_classes, rho)


def test_step_profile_cifar10():
    counts = long_tailed_counts(5000, 10, imbalance_ratio=100, profile="step")
    assert counts.tolist() == [5000] * 5 + [50] * 5


@pytest.mark.parametrize("profile", ["exp", "step"])
def test_single_class_keeps_n_max(profile):
    counts = long_tailed_counts(123, 1, imbalance_ratio=100, profile=profile)
    assert counts.tolist() == [123]


def test_rounding_error_does_not_drop_the_tail_example():
    # 49 * (1 / 49) is 0.9999999999999999 in floating point.
    assert 49 * (1 / 49) < 1
    assert long_tailed_counts(49, 2, imbalance_ratio=49).tolist() == [49, 1]
    assert long_tailed_counts(49, 2, imbalance_ratio=49, profile="step").tolist() == [
        49,
        1,
    ]


def test_balanced_when_ratio_is_one():
    assert long_tailed_counts(7, 4, imbalance_ratio=1).tolist() == [7, 7, 7, 7]


@settings(max_examples=60, deadline=None)
@given(
    n_classes=st.integers(1, 200),
    rho=st.floats(1, 1000),
    extra=st.integers(0, 10_000),
    profile=st.sampled_from(["exp", "step"]),
)
def test_counts_properties(n_classes, rho, extra, profile):
    n_max = int(np.ceil(rho)) + extra
    counts = long_tailed_counts(n_max, n_classes, imbalance_ratio=rho, profile=profile)
    assert counts.shape == (n_classes,)
    assert counts[0] == n_max
    assert np.all(np.diff(counts) <= 0)
    assert counts[-1] >= 1
    if n_classes > 1:
        assert counts[-1] <= n_max / rho + 1e-9 * n_max


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"imbalance_ratio": 0.5}, "imbalance_ratio"),
        ({"imbalance_ratio": float("nan")}, "imbalance_ratio"),
        ({"imbalance_ratio": float("inf")}, "imbalance_ratio"),
        ({"n_classes": 0}, "n_classes"),
        ({"n_max": 0}, "n_max"),
        ({"profile": "linear"}, "profile"),
        ({"n_max": 50, "imbalance_ratio": 100}, "tail class"),
    ],
)
def test_long_tailed_counts_rejects_bad_arguments(kwargs, match):
    arguments = {"n_max": 5000, "n_classes": 10, **kwargs}
    n_max, n_classes = arguments.pop("n_max"), arguments.pop("n_classes")
    with pytest.raises(ValueError, match=match):
        long_tailed_counts(n_max, n_classes, **arguments)


# --------------------------------------------------------------------------------------
# make_long_tailed
# --------------------------------------------------------------------------------------


def labelled_rows(class_sizes, seed=0):
    """X whose column 0 is the row number and column 1 the label; y shuffled."""
    y = np.repeat(np.arange(len(class_sizes)), class_sizes)
    np.random.default_rng(seed).shuffle(y)
    X = np.column_stack([np.arange(len(y)), y])
    return X, y


def test_make_long_tailed_counts_follow_the_profile():
    X, y = labelled_rows([60, 80, 50, 70])
    X_lt, y_lt = make_long_tailed(X, y, imbalance_ratio=10, random_state=0)
    expected = long_tailed_counts(50, 4, imbalance_ratio=10)
    assert np.bincount(y_lt).tolist() == expected.tolist()
    # Rows stay aligned with their labels and in their original order.
    assert np.array_equal(X_lt[:, 1], y_lt)
    assert np.all(np.diff(X_lt[:, 0]) > 0)
    assert np.array_equal(y[X_lt[:, 0]], y_lt)


@pytest.mark.parametrize("profile", ["exp", "step"])
def test_make_long_tailed_explicit_n_max(profile):
    X, y = labelled_rows([100, 100, 100, 100, 100])
    _, y_lt = make_long_tailed(
        X, y, imbalance_ratio=20, profile=profile, n_max=80, random_state=1
    )
    expected = long_tailed_counts(80, 5, imbalance_ratio=20, profile=profile)
    assert np.bincount(y_lt).tolist() == expected.tolist()


def test_make_long_tailed_is_deterministic_given_a_seed():
    X, y = labelled_rows([50, 50, 50])
    first, _ = make_long_tailed(X, y, imbalance_ratio=5, random_state=3)
    again, _ = make_long_tailed(X, y, imbalance_ratio=5, random_state=3)
    other, _ = make_long_tailed(X, y, imbalance_ratio=5, random_state=4)
    from_state, _ = make_long_tailed(
        X, y, imbalance_ratio=5, random_state=np.random.RandomState(3)
    )
    assert np.array_equal(first, again)
    assert np.array_equal(first, from_state)
    assert not np.array_equal(first, other)


def test_make_long_tailed_leaves_the_global_random_state_alone():
    X, y = labelled_rows([50, 50, 50])
    # The legacy global state is exactly what this test checks.
    global_state_before = np.random.get_state()[1].copy()  # noqa: NPY002
    make_long_tailed(X, y, imbalance_ratio=5, random_state=7)
    make_long_tailed(X, y, imbalance_ratio=5, head_classes="shuffle", random_state=7)
    global_state_after = np.random.get_state()[1]  # noqa: NPY002
    assert np.array_equal(global_state_before, global_state_after)


def test_make_long_tailed_selections_are_nested():
    X, y = labelled_rows([40, 40, 40, 40])
    mild, _ = make_long_tailed(X, y, imbalance_ratio=2, random_state=5)
    strong, _ = make_long_tailed(X, y, imbalance_ratio=20, random_state=5)
    assert set(strong[:, 0]) < set(mild[:, 0])


def test_head_classes_sorted_uses_label_order():
    y = np.array(["cat"] * 30 + ["ant"] * 30 + ["bee"] * 30)
    X = np.arange(90).reshape(-1, 1)
    _, y_lt = make_long_tailed(X, y, imbalance_ratio=10, random_state=0)
    counts = Counter(y_lt.tolist())
    expected = long_tailed_counts(30, 3, imbalance_ratio=10)
    assert [counts["ant"], counts["bee"], counts["cat"]] == expected.tolist()


def test_head_classes_explicit_order():
    X, y = labelled_rows([30, 30, 30])
    _, y_lt = make_long_tailed(
        X, y, imbalance_ratio=10, head_classes=[2, 0, 1], random_state=0
    )
    expected = long_tailed_counts(30, 3, imbalance_ratio=10)
    counts = np.bincount(y_lt)
    assert [counts[2], counts[0], counts[1]] == expected.tolist()


def test_head_classes_shuffle_is_a_seeded_permutation():
    X, y = labelled_rows([20] * 10)
    expected = long_tailed_counts(20, 10, imbalance_ratio=20)
    orders = []
    for seed in (0, 0, 1):
        _, y_lt = make_long_tailed(
            X, y, imbalance_ratio=20, head_classes="shuffle", random_state=seed
        )
        counts = np.bincount(y_lt, minlength=10)
        assert sorted(counts.tolist(), reverse=True) == expected.tolist()
        orders.append(counts.tolist())
    assert orders[0] == orders[1]
    assert orders[0] != orders[2]
    assert orders[0] != sorted(orders[0], reverse=True)


@pytest.mark.parametrize(
    "head_classes", ["reverse", [0, 1], [0, 1, 1], [0, 1, 3], [[0, 1, 2]]]
)
def test_head_classes_rejects_bad_values(head_classes):
    X, y = labelled_rows([30, 30, 30])
    with pytest.raises(ValueError, match="head_classes"):
        make_long_tailed(X, y, head_classes=head_classes, imbalance_ratio=10)


def test_make_long_tailed_keeps_pandas_types_and_index():
    X, y = labelled_rows([40, 30, 50])
    index = pd.Index([f"row{i}" for i in range(len(y))], name="id")
    frame = pd.DataFrame(X, columns=["number", "label"], index=index)
    labels = pd.Series(y, index=index, name="target")
    X_lt, y_lt = make_long_tailed(frame, labels, imbalance_ratio=10, random_state=0)
    assert isinstance(X_lt, pd.DataFrame)
    assert isinstance(y_lt, pd.Series)
    assert list(X_lt.columns) == ["number", "label"]
    assert y_lt.name == "target"
    assert X_lt.index.equals(y_lt.index)
    assert X_lt.index.name == "id"
    assert X_lt.index.isin(index).all()
    assert np.all(np.diff(X_lt["number"].to_numpy()) > 0)
    assert (X_lt["label"] == y_lt).all()
    assert np.bincount(y_lt).tolist() == [30, 9, 3]


def test_make_long_tailed_accepts_lists():
    X, y = labelled_rows([20, 10])
    X_lt, y_lt = make_long_tailed(
        X.tolist(), y.tolist(), imbalance_ratio=5, random_state=0
    )
    assert isinstance(X_lt, list)
    assert isinstance(y_lt, list)
    assert Counter(y_lt) == {0: 10, 1: 2}
    assert [row[1] for row in X_lt] == y_lt


def test_make_long_tailed_does_not_mutate_inputs():
    X, y = labelled_rows([40, 30, 50])
    frame = pd.DataFrame(X)
    labels = pd.Series(y)
    X_before, y_before = X.copy(), y.copy()
    frame_before, labels_before = frame.copy(), labels.copy()
    X_lt, _ = make_long_tailed(X, y, imbalance_ratio=10, random_state=0)
    make_long_tailed(frame, labels, imbalance_ratio=10, random_state=0)
    assert np.array_equal(X, X_before)
    assert np.array_equal(y, y_before)
    pd.testing.assert_frame_equal(frame, frame_before)
    pd.testing.assert_series_equal(labels, labels_before)
    assert not np.shares_memory(X_lt, X)


def test_make_long_tailed_explains_a_short_class():
    X, y = labelled_rows([100, 100, 12, 100])
    with pytest.raises(ValueError, match="n_max") as error:
        make_long_tailed(X, y, imbalance_ratio=10, n_max=100, random_state=0)
    message = str(error.value)
    requested = long_tailed_counts(100, 4, imbalance_ratio=10)[2]
    assert f"class 2 has 12 examples but {requested} were requested" in message
    assert "Lower n_max" in message
    assert "imbalance_ratio" in message
    # The largest n_max it suggests does fit.
    largest = int(message.split("n_max=")[-1].split(" ")[0])
    make_long_tailed(X, y, imbalance_ratio=10, n_max=largest, random_state=0)
    with pytest.raises(ValueError, match="class 2 has 12"):
        make_long_tailed(X, y, imbalance_ratio=10, n_max=largest + 1)


@pytest.mark.parametrize(
    ("class_sizes", "imbalance_ratio", "n_max", "largest"),
    [
        ([55, 55, 2], 50, 60, 55),  # feasible only between 50 and 55
        ([100, 100, 12, 100], 10, 100, None),  # computed below
    ],
)
def test_shortage_message_suggests_the_largest_n_max(
    class_sizes, imbalance_ratio, n_max, largest
):
    X, y = labelled_rows(class_sizes)
    if largest is None:
        fitting = [
            candidate
            for candidate in range(imbalance_ratio, n_max)
            if np.all(
                long_tailed_counts(
                    candidate, len(class_sizes), imbalance_ratio=imbalance_ratio
                )
                <= class_sizes
            )
        ]
        largest = max(fitting)
    with pytest.raises(ValueError, match=f"n_max={largest} is the largest that fits"):
        make_long_tailed(X, y, imbalance_ratio=imbalance_ratio, n_max=n_max)
    _, y_lt = make_long_tailed(X, y, imbalance_ratio=imbalance_ratio, n_max=largest)
    assert np.bincount(y_lt)[0] == largest
    with pytest.raises(ValueError, match="were requested"):
        make_long_tailed(X, y, imbalance_ratio=imbalance_ratio, n_max=largest + 1)


def test_shortage_message_when_no_n_max_fits():
    # A non-empty tail needs n_max >= 100, which asks the middle class for >= 10.
    X, y = labelled_rows([200, 5, 200])
    with pytest.raises(ValueError, match="no n_max fits this imbalance_ratio"):
        make_long_tailed(X, y, imbalance_ratio=100, n_max=200)


def test_make_long_tailed_shortage_message_shows_string_labels():
    labels = pd.Series(["ant"] * 30 + ["bee"] * 10 + ["cat"] * 30)
    frame = pd.DataFrame({"value": range(70)})
    with pytest.raises(ValueError, match="class 'bee' has 10 examples but 17 were"):
        make_long_tailed(frame, labels, imbalance_ratio=3, n_max=30)
    # Putting the small class at the tail makes the same request feasible.
    _, y_lt = make_long_tailed(
        frame, labels, imbalance_ratio=3, n_max=30, head_classes=["ant", "cat", "bee"]
    )
    assert y_lt.value_counts().to_dict() == {"ant": 30, "cat": 17, "bee": 10}


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.zeros((3, 2)), np.array([0, 1]), "inconsistent"),
        (np.zeros((0, 2)), np.array([]), "at least one"),
    ],
)
def test_make_long_tailed_rejects_bad_data(X, y, match):
    with pytest.raises(ValueError, match=match):
        make_long_tailed(X, y)


# --------------------------------------------------------------------------------------
# make_long_tailed_classification
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["exp", "step"])
def test_make_long_tailed_classification_counts_and_shapes(profile):
    X, y = make_long_tailed_classification(
        n_classes=7,
        n_features=5,
        n_max=200,
        imbalance_ratio=20,
        profile=profile,
        random_state=0,
    )
    expected = long_tailed_counts(200, 7, imbalance_ratio=20, profile=profile)
    assert np.bincount(y).tolist() == expected.tolist()
    assert X.shape == (expected.sum(), 5)
    assert X.dtype == np.float64
    assert y.dtype == np.int64
    assert not np.all(np.diff(y) >= 0), "rows should be shuffled"


def test_make_long_tailed_classification_is_deterministic():
    first = make_long_tailed_classification(n_max=200, random_state=0)
    again = make_long_tailed_classification(n_max=200, random_state=0)
    other = make_long_tailed_classification(n_max=200, random_state=1)
    assert np.array_equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_make_long_tailed_classification_class_sep_controls_difficulty():
    def training_accuracy(class_sep):
        X, y = make_long_tailed_classification(
            n_classes=5,
            n_features=6,
            n_max=200,
            imbalance_ratio=2,
            class_sep=class_sep,
            random_state=0,
        )
        return NearestCentroid().fit(X, y).score(X, y)

    assert training_accuracy(10.0) > 0.99
    assert training_accuracy(0.0) < 0.5


def test_make_long_tailed_classification_noise_features_carry_no_signal():
    X, y = make_long_tailed_classification(
        n_classes=4,
        n_features=6,
        n_informative=2,
        n_max=2000,
        imbalance_ratio=4,
        class_sep=5.0,
        random_state=0,
    )
    class_means = np.array([X[y == label].mean(axis=0) for label in range(4)])
    assert np.abs(class_means[:, 2:]).max() < 0.2
    assert np.ptp(class_means[:, :2], axis=0).max() > 1.0


def test_make_long_tailed_classification_n_samples_sets_n_max():
    X, y = make_long_tailed_classification(
        n_samples=5000, n_classes=10, imbalance_ratio=100, random_state=0
    )
    n_max = np.bincount(y)[0]
    assert len(y) <= 5000
    assert long_tailed_counts(n_max + 1, 10, imbalance_ratio=100).sum() > 5000
    assert np.bincount(y).tolist() == long_tailed_counts(n_max, 10).tolist()
    assert X.shape[0] == len(y)


@settings(max_examples=40, deadline=None)
@given(
    n_samples=st.integers(1, 20_000),
    n_classes=st.integers(1, 30),
    rho=st.floats(1, 50),
    profile=st.sampled_from(["exp", "step"]),
)
def test_n_samples_gives_the_largest_total_that_fits(
    n_samples, n_classes, rho, profile
):
    arguments = {"imbalance_ratio": rho, "profile": profile}
    try:
        _, y = make_long_tailed_classification(
            n_samples, n_classes, 2, random_state=0, **arguments
        )
    except ValueError as error:
        assert "is too small" in str(error)
        smallest = long_tailed_counts(int(np.ceil(rho)) + 1, n_classes, **arguments)
        assert n_samples < smallest.sum()
        return
    n_max = int(np.bincount(y)[0])
    assert len(y) <= n_samples
    assert np.bincount(y).tolist() == (
        long_tailed_counts(n_max, n_classes, **arguments).tolist()
    )
    assert long_tailed_counts(n_max + 1, n_classes, **arguments).sum() > n_samples


def test_make_long_tailed_classification_many_classes():
    X, y = make_long_tailed_classification(
        n_classes=1000, n_features=8, n_max=100, imbalance_ratio=100, random_state=0
    )
    expected = long_tailed_counts(100, 1000, imbalance_ratio=100)
    assert np.bincount(y, minlength=1000).tolist() == expected.tolist()
    assert X.shape == (expected.sum(), 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_informative": 30}, "n_informative"),
        ({"n_features": 0}, "n_features"),
        ({"class_sep": -1.0}, "class_sep"),
        ({"n_samples": 50, "n_classes": 10}, "n_samples=50 is too small"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_max": 10, "imbalance_ratio": 100}, "tail class"),
    ],
)
def test_make_long_tailed_classification_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_long_tailed_classification(**kwargs)


# --------------------------------------------------------------------------------------
# load_digits_lt
# --------------------------------------------------------------------------------------


def test_load_digits_lt_splits():
    digits = load_digits_lt(imbalance_ratio=10, random_state=0)
    assert np.bincount(digits.y_test).tolist() == [50] * 10
    expected = long_tailed_counts(124, 10, imbalance_ratio=10)
    assert np.bincount(digits.y_train).tolist() == expected.tolist()
    assert digits.class_counts.tolist() == expected.tolist()
    assert digits.class_counts[0] / digits.class_counts[-1] == pytest.approx(124 / 12)
    assert digits.X_train.shape == (expected.sum(), 64)
    assert digits.X_test.shape == (500, 64)
    assert digits.X_train.dtype == np.float64
    assert digits.X_train.min() >= 0
    assert digits.X_train.max() <= 16
    assert digits.image_shape == (1, 8, 8)
    assert digits.target_names.tolist() == list(range(10))
    assert "imbalance_ratio=10" in digits.DESCR


def test_load_digits_lt_train_and_test_do_not_overlap():
    from sklearn.datasets import load_digits

    original = Counter(row.tobytes() for row in load_digits().data)
    digits = load_digits_lt(imbalance_ratio=2, random_state=0)
    used = Counter(row.tobytes() for row in digits.X_train)
    used.update(row.tobytes() for row in digits.X_test)
    # Every image is used at most as often as it occurs in load_digits.
    assert all(used[key] <= original[key] for key in used)


def test_load_digits_lt_options():
    X_train, X_test, y_train, y_test = load_digits_lt(
        imbalance_ratio=100,
        profile="step",
        n_test_per_class=30,
        return_X_y=True,
        random_state=0,
    )
    assert np.bincount(y_test).tolist() == [30] * 10
    assert np.bincount(y_train).tolist() == [144] * 5 + [1] * 5
    assert X_train.shape[0] == y_train.shape[0]
    assert X_test.shape == (300, 64)


def test_load_digits_lt_random_state():
    first = load_digits_lt(random_state=0)
    again = load_digits_lt(random_state=0)
    other = load_digits_lt(random_state=1)
    assert np.array_equal(first.X_test, again.X_test)
    assert np.array_equal(first.X_train, again.X_train)
    assert not np.array_equal(first.X_test, other.X_test)


def test_load_digits_lt_rejects_a_test_split_too_large():
    with pytest.raises(ValueError, match="n_test_per_class=174"):
        load_digits_lt(n_test_per_class=174)


# --------------------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------------------

IDX_TYPE_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(array):
    """Encode ``array`` as an IDX file, written independently of the reader."""
    type_code = IDX_TYPE_CODES[array.dtype.type]
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, compress):
    content = idx_bytes(array)
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


@pytest.mark.parametrize("dtype", list(IDX_TYPE_CODES))
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, shape, compress):
    values = np.arange(np.prod(shape)).reshape(shape) * 37 - 50
    if np.dtype(dtype).kind == "f":
        values = values / 3
    array = values.astype(dtype)
    path = write_idx(tmp_path / "data-idx", array, compress)
    read = read_idx(path)
    assert read.dtype == np.dtype(dtype)
    assert read.dtype.isnative
    assert read.shape == shape
    assert np.array_equal(read, array)
    read.flat[0] = 1  # the result is a writable array of its own


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    compressed = write_idx(tmp_path / "images-idx3-ubyte", array, compress=True)
    raw = write_idx(tmp_path / "images-idx3-ubyte.gz", array, compress=False)
    assert np.array_equal(read_idx(compressed), array)
    assert np.array_equal(read_idx(str(raw)), array)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda content: b"\x01" + content[1:], "bad magic number"),
        (lambda content: content[:2] + b"\x0a" + content[3:], "bad magic number"),
        (lambda content: content[:-1], "truncated IDX data"),
        (lambda content: content + b"\x00", "too long"),
        (lambda content: content[:6], "truncated IDX header"),
        (lambda content: content[:3], "fewer than the 4-byte magic"),
        (lambda content: b"", "fewer than the 4-byte magic"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, compress, corrupt, match):
    content = corrupt(idx_bytes(np.arange(24, dtype=np.int16).reshape(2, 3, 4)))
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(ValueError, match=match) as error:
        read_idx(path)
    assert "broken-idx3-ubyte" in str(error.value)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz.*gzip"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")


# --------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------


def fake_fashion_mnist(directory, n_train_per_class=20, n_test_per_class=3):
    """Tiny Fashion-MNIST files: train gzip-compressed, test raw (both accepted)."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    splits = {}
    for prefix, per_class, compress in [
        ("train", n_train_per_class, True),
        ("t10k", n_test_per_class, False),
    ]:
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        splits[prefix] = (images, labels)
    return splits


def test_load_fashion_mnist_from_fake_files(tmp_path):
    splits = fake_fashion_mnist(tmp_path)
    fashion = load_fashion_mnist(tmp_path)
    train_images, train_labels = splits["train"]
    test_images, test_labels = splits["t10k"]
    assert fashion.X_train.shape == (200, 784)
    assert fashion.X_train.dtype == np.uint8
    assert np.array_equal(fashion.X_train, train_images.reshape(200, 784))
    assert np.array_equal(fashion.y_train, train_labels)
    assert fashion.y_train.dtype == np.int64
    assert np.array_equal(fashion.X_test, test_images.reshape(30, 784))
    assert np.array_equal(fashion.y_test, test_labels)
    assert fashion.class_counts.tolist() == [20] * 10
    assert fashion.image_shape == (1, 28, 28)
    assert len(fashion.target_names) == 10
    assert fashion.target_names[9] == "Ankle boot"
    reshaped = fashion.X_train.reshape(-1, *fashion.image_shape)
    assert np.array_equal(reshaped[:, 0], train_images)
    X_train, X_test, y_train, y_test = load_fashion_mnist(tmp_path, return_X_y=True)
    assert np.array_equal(X_train, fashion.X_train)
    assert np.array_equal(X_test, fashion.X_test)
    assert np.array_equal(y_train, fashion.y_train)
    assert np.array_equal(y_test, fashion.y_test)


def test_load_fashion_mnist_reads_the_environment_variable(tmp_path, monkeypatch):
    fake_fashion_mnist(tmp_path / "fmnist")
    monkeypatch.setenv("SKLEARN_LT_FASHION_MNIST", str(tmp_path / "fmnist"))
    assert load_fashion_mnist().X_train.shape == (200, 784)


def test_load_fashion_mnist_missing_directory_says_how_to_get_it(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="apt-get install dataset-fashion-mnist"
    ):
        load_fashion_mnist(tmp_path / "nowhere")


def test_load_fashion_mnist_names_the_missing_file(tmp_path):
    fake_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing t10k-labels-idx1-ubyte\.gz"):
        load_fashion_mnist(tmp_path)


def test_load_fashion_mnist_rejects_wrong_image_shape(tmp_path):
    fake_fashion_mnist(tmp_path)
    images = np.zeros((30, 27, 28), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images, compress=False)
    with pytest.raises(ValueError, match=r"t10k-images.*\(n, 28, 28\)"):
        load_fashion_mnist(tmp_path)


def test_load_fashion_mnist_lt_from_fake_files(tmp_path):
    fake_fashion_mnist(tmp_path, n_train_per_class=30)
    fashion = load_fashion_mnist_lt(tmp_path, imbalance_ratio=10, random_state=0)
    expected = long_tailed_counts(30, 10, imbalance_ratio=10)
    assert fashion.class_counts.tolist() == expected.tolist()
    assert np.bincount(fashion.y_train).tolist() == expected.tolist()
    assert fashion.X_train.shape == (expected.sum(), 784)
    assert np.bincount(fashion.y_test).tolist() == [3] * 10
    assert "imbalance_ratio=10" in fashion.DESCR
    again = load_fashion_mnist_lt(tmp_path, imbalance_ratio=10, return_X_y=True)
    assert np.array_equal(again[0], fashion.X_train)


@pytest.mark.skipif(
    not all((REAL_FASHION_MNIST_HOME / name).is_file() for name in FASHION_MNIST_FILES),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("SKLEARN_LT_FASHION_MNIST", raising=False)
    fashion = load_fashion_mnist()
    assert fashion.X_train.shape == (60000, 784)
    assert fashion.X_test.shape == (10000, 784)
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10
    assert fashion.target_names[fashion.y_train[0]] == "Ankle boot"
    X_train, X_test, y_train, y_test = load_fashion_mnist_lt(return_X_y=True)
    expected = long_tailed_counts(6000, 10, imbalance_ratio=100)
    assert np.bincount(y_train).tolist() == expected.tolist()
    assert X_train.shape == (expected.sum(), 784)
    assert np.array_equal(X_test, fashion.X_test)
    assert np.array_equal(y_test, fashion.y_test)
