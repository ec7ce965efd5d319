"""Tests of sklearn_lt.weights."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_lt.weights import (
    check_class_counts,
    class_priors,
    effective_number_weights,
    inverse_frequency_weights,
)

CIFAR10_LT = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


# --- check_class_counts -------------------------------------------------------


def test_check_class_counts_returns_float64_copy():
    counts = np.array([3, 1, 0])
    checked = check_class_counts(counts)
    assert checked.dtype == np.float64
    np.testing.assert_array_equal(checked, [3.0, 1.0, 0.0])
    checked[0] = 100.0
    assert counts[0] == 3
    floats = np.array([2.5, 0.5])
    assert check_class_counts(floats) is not floats
    np.testing.assert_array_equal(check_class_counts((2.5, 0.5)), floats)


@pytest.mark.parametrize(
    "counts",
    [
        [-1, 2],
        [np.nan, 2],
        [np.inf, 2],
        [[1, 2], [3, 4]],
        [],
        5,
        [0, 0, 0],
        ["a", "b"],
        None,
    ],
)
def test_check_class_counts_rejects(counts):
    with pytest.raises(ValueError, match="class_counts"):
        check_class_counts(counts)


def test_check_class_counts_uses_name():
    with pytest.raises(ValueError, match="my_counts"):
        check_class_counts([-1, 1], name="my_counts")


# --- effective_number_weights -------------------------------------------------


def test_beta_zero_gives_ones():
    np.testing.assert_array_equal(effective_number_weights(CIFAR10_LT, beta=0.0), 1.0)
    np.testing.assert_array_equal(effective_number_weights([7, 1], beta=0), [1, 1])


def test_closed_form_by_hand():
    counts = [5000.0, 500.0, 50.0]
    beta = 0.999
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    expected = np.array(raw) * 3 / sum(raw)
    actual = effective_number_weights(counts, beta=beta)
    np.testing.assert_allclose(actual, expected, rtol=1e-10)
    np.testing.assert_allclose(actual, [0.126, 0.317, 2.557], atol=1e-3)


def test_closed_form_two_classes():
    # beta = 0.5, n = (1, 2): raw = (0.5/0.5, 0.5/0.75) = (1, 2/3); sum to 2.
    np.testing.assert_allclose(
        effective_number_weights([1, 2], beta=0.5), [1.2, 0.8], rtol=1e-12
    )


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.999999])
def test_weights_sum_to_n_classes(beta):
    weights = effective_number_weights(CIFAR10_LT, beta=beta)
    assert weights.shape == (10,)
    assert weights.dtype == np.float64
    assert weights.sum() == pytest.approx(10.0)
    assert np.all(weights > 0)
    # Rarer classes never get a smaller weight.
    assert np.all(np.diff(weights) >= 0)
    if beta > 0:
        assert weights[-1] > weights[0]


def test_beta_to_one_approaches_inverse_frequency():
    counts = [1, 3, 10, 40]
    inverse = np.array([1.0 / n for n in counts])
    inverse *= 4 / inverse.sum()
    near_one = effective_number_weights(counts, beta=0.999999)
    np.testing.assert_allclose(near_one, inverse, rtol=1e-4)
    np.testing.assert_allclose(inverse_frequency_weights(counts), inverse, rtol=1e-12)
    # And gets closer as beta grows.
    errors = [
        np.abs(effective_number_weights(counts, beta=b) - inverse).max()
        for b in (0.9, 0.99, 0.999, 0.9999)
    ]
    assert errors == sorted(errors, reverse=True)


def test_beta_close_to_one_keeps_precision():
    # 1 - beta**n computed naively loses digits; the weights stay monotone and
    # close to inverse frequency.
    beta = 1.0 - 1e-12
    weights = effective_number_weights([1, 2, 4], beta=beta)
    np.testing.assert_allclose(weights, np.array([4, 2, 1]) * 3 / 7, rtol=1e-6)


def test_zero_counts_get_zero_weight():
    counts = [100, 0, 10, 0]
    for weights in [
        effective_number_weights(counts, beta=0.99),
        effective_number_weights(counts, beta=0.0),
        inverse_frequency_weights(counts),
    ]:
        assert np.all(np.isfinite(weights))
        assert weights[1] == 0.0 and weights[3] == 0.0
        assert weights[0] > 0 and weights[2] > 0
        assert weights.sum() == pytest.approx(4.0)
    np.testing.assert_allclose(
        inverse_frequency_weights(counts), np.array([1, 0, 10, 0]) * 4 / 11
    )


@pytest.mark.parametrize("beta", [1.0, 1.5, -0.1, -1e-12, np.nan, np.inf, True, False])
def test_bad_beta_raises(beta):
    with pytest.raises(ValueError, match="beta"):
        effective_number_weights([10, 1], beta=beta)


@pytest.mark.parametrize("beta", ["0.9", None, [0.9]])
def test_non_number_beta_raises(beta):
    with pytest.raises(ValueError, match="beta"):
        effective_number_weights([10, 1], beta=beta)


def test_numpy_scalar_beta_accepted():
    np.testing.assert_allclose(
        effective_number_weights([10, 1], beta=np.float64(0.9)),
        effective_number_weights([10, 1], beta=0.9),
    )


@pytest.mark.parametrize(
    "function",
    [effective_number_weights, inverse_frequency_weights],
    ids=["effective_number", "inverse_frequency"],
)
def test_bad_counts_raise(function):
    for counts in ([-1, 2], [np.nan, 1], [[1, 2]], [0, 0]):
        with pytest.raises(ValueError, match="class_counts"):
            function(counts)


def test_input_not_mutated():
    counts = np.array([100, 0, 10], dtype=np.int64)
    float_counts = np.array([100.0, 0.0, 10.0])
    as_list = [100, 0, 10]
    for function in (
        inverse_frequency_weights,
        lambda c: effective_number_weights(c, beta=0.99),
    ):
        for original in (counts, float_counts):
            before = original.copy()
            out = function(original)
            np.testing.assert_array_equal(original, before)
            assert out is not original
            assert not np.shares_memory(out, original)
        function(as_list)
        assert as_list == [100, 0, 10]


def test_inverse_frequency_by_hand():
    np.testing.assert_allclose(inverse_frequency_weights([300, 100]), [0.5, 1.5])
    np.testing.assert_allclose(inverse_frequency_weights([5, 5, 5]), [1, 1, 1])


# --- Property tests -----------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    counts=st.lists(
        st.one_of(st.integers(1, 10**9), st.floats(1e-6, 1e12)),
        min_size=1,
        max_size=20,
    ),
    beta=st.floats(0.0, 1.0, exclude_max=True),
)
def test_property_finite_positive(counts, beta):
    weights = effective_number_weights(counts, beta=beta)
    assert weights.shape == (len(counts),)
    assert np.all(np.isfinite(weights))
    assert np.all(weights > 0)
    assert weights.sum() == pytest.approx(len(counts), rel=1e-9)
    # A class with at least as many examples never gets more weight.
    order = np.argsort(counts, kind="stable")
    sorted_weights = weights[order]
    assert np.all(np.diff(sorted_weights) <= sorted_weights[:-1] * 1e-9)
    inverse = inverse_frequency_weights(counts)
    assert np.all(np.isfinite(inverse)) and np.all(inverse > 0)
    assert inverse.sum() == pytest.approx(len(counts), rel=1e-9)


def test_class_priors_treat_zero_counts_as_the_rarest_class():
    from sklearn_lt.weights import class_priors

    np.testing.assert_allclose(class_priors([6, 2, 0]), [0.6, 0.2, 0.2])
    np.testing.assert_allclose(class_priors([3.0, 1.0]), [0.75, 0.25])
    assert np.all(np.isfinite(np.log(class_priors([0, 0, 5]))))
    with pytest.raises(ValueError, match="class_counts"):
        class_priors([0, 0])


# --- Gaps found by mutation testing (benchmarks/README.md) ----------------------------


def test_class_priors_of_fractional_counts():
    # Weighted counts can be fractional; a zero stays the rarest class.
    np.testing.assert_allclose(
        class_priors([0.5, 0.8, 2.0]), np.array([0.5, 0.8, 2.0]) / 3.3
    )
    np.testing.assert_allclose(class_priors([0.5, 3, 0]), [0.125, 0.75, 0.125])


def test_inverse_frequency_weights_of_extreme_counts_are_finite():
    np.testing.assert_allclose(inverse_frequency_weights([1e-300, 1]), [2, 2e-300])


def test_effective_number_weights_match_the_direct_formula_across_branches():
    counts = np.array([1e-6, 1000.0])
    beta = 0.9999
    direct = (1 - beta) / -np.expm1(counts * np.log(beta))
    expected = direct / direct.sum() * counts.size
    np.testing.assert_allclose(effective_number_weights(counts, beta=beta), expected)


def test_effective_number_weights_default_beta_is_the_papers():
    counts = [100, 10, 1]
    np.testing.assert_allclose(
        effective_number_weights(counts), effective_number_weights(counts, beta=0.9999)
    )
    assert not np.allclose(
        effective_number_weights(counts), effective_number_weights(counts, beta=0.99)
    )
