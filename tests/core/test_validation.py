"""Bad input gets a ValueError / TypeError that says what is wrong and what to do.

Every mode is called through the public API; the message is checked for the key
words a user needs (which input, what is wrong, the remedy).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_unmix.core import nmf, nnls, pca


def _pca(X):
    return pca(X, 1)


def _nmf(X):
    return nmf(X, 1, solver="cd", backend="sklearn", random_state=0)


def _nnls(X):
    shape = np.shape(X)
    m = shape[1] if len(shape) == 2 else 3
    return nnls(X, np.ones((1, max(m, 1))), backend="scipy")


MODES = [pytest.param(f, id=f.__name__.strip("_")) for f in (_pca, _nmf, _nnls)]


@pytest.fixture
def good():
    return np.random.default_rng(0).random((10, 4)) + 0.1


@pytest.mark.parametrize("run", MODES)
@pytest.mark.parametrize(("value", "word"), [(np.nan, "1 NaN and 0 infinite"),
                                             (np.inf, "0 NaN and 1 infinite"),
                                             (-np.inf, "0 NaN and 1 infinite")])
def test_non_finite_data(run, good, value, word):
    good[3, 2] = value
    with pytest.raises(ValueError, match=word) as err:
        run(good)
    # the remedy: mask those pixels out
    assert "finite_mask" in str(err.value)


@pytest.mark.parametrize("run", MODES)
def test_masked_values_are_refused_not_read(run, good):
    masked = np.ma.masked_array(good, mask=np.zeros_like(good, dtype=bool))
    masked[2, 1] = np.ma.masked
    with pytest.raises(ValueError, match="masked array with 1 masked value") as err:
        run(masked)
    assert "filled" in str(err.value) and "finite_mask" in str(err.value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a capped cd run is not what this is about
        run(np.ma.masked_array(good))  # nothing masked: plain data


def test_a_masked_stack_is_refused_by_stack_to_matrix(good):
    from napari_unmix.core import stack_to_matrix

    stack = np.ma.masked_array(good.T.reshape(4, 2, 5), mask=False)
    stack[0, 1, 1] = np.ma.masked
    with pytest.raises(ValueError, match="stack is a masked array with 1 masked value"):
        stack_to_matrix(stack, 0)


@pytest.mark.parametrize("run", MODES)
def test_object_dtype(run, good):
    with pytest.raises(TypeError, match="dtype object.*not a real number type"):
        run(good.astype(object))


@pytest.mark.parametrize("run", MODES)
def test_complex_dtype(run, good):
    with pytest.raises(TypeError, match="complex128.*not a real number type"):
        run(good + 0j)


@pytest.mark.parametrize("run", MODES)
def test_string_dtype(run):
    with pytest.raises(TypeError, match="not a real number type"):
        run(np.array([["1", "2"], ["3", "4"]]))


@pytest.mark.parametrize("run", MODES)
@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (0, 0)])
def test_empty_data(run, shape):
    with pytest.raises(ValueError, match=r"has shape \(.*\) but needs at least"):
        run(np.zeros(shape))


@pytest.mark.parametrize("run", MODES)
@pytest.mark.parametrize("X", [np.ones(5), np.ones((2, 3, 4))], ids=["1d", "3d"])
def test_not_a_matrix(run, X):
    with pytest.raises(ValueError, match="must be a 2-D matrix.*stack_to_matrix"):
        run(X)


def test_pca_needs_two_pixels():
    with pytest.raises(ValueError, match=r"needs at least 2 pixel"):
        pca(np.ones((1, 5)), 1)


@pytest.mark.parametrize(("shape", "k"), [((1, 6), 2), ((6, 1), 2)],
                         ids=["1-sample", "1-feature"])
def test_too_many_components_for_thin_data(shape, k):
    X = np.random.default_rng(0).random(shape) + 0.1
    with pytest.raises(ValueError, match=f"n_components={k}.*at most 1.*Reduce n_components"):
        nmf(X, k, random_state=0)
    if shape[0] > 1:
        with pytest.raises(ValueError, match="at most 1"):
            pca(X, k)


@pytest.mark.parametrize("k", [0, -1])
def test_n_components_too_small(good, k):
    for run in (pca, nmf):
        with pytest.raises(ValueError, match="at least 1"):
            run(good, k)


@pytest.mark.parametrize("k", [2.0, "2", True, None])
def test_n_components_not_integer(good, k):
    for run in (pca, nmf):
        with pytest.raises(TypeError, match="n_components must be an integer"):
            run(good, k)


def test_numpy_integer_n_components(good):
    assert pca(good, np.int64(2)).n_components == 2


@pytest.mark.parametrize("run", [_nmf, _nnls], ids=["nmf", "nnls"])
def test_negative_data_needs_opt_in(run, good):
    good[0, 0] = -0.5
    with pytest.raises(ValueError, match="1 negative value") as err:
        run(good)
    assert "negative='clip'" in str(err.value)
    assert "negative='offset'" in str(err.value)


def test_pca_accepts_negative_data(good):
    # PCA centres the data anyway: negative values are legitimate there
    good -= 0.5
    assert np.isfinite(pca(good, 2).W).all()


@pytest.mark.parametrize("policy", ["zero", None, "CLIP"])
def test_unknown_negative_policy(good, policy):
    with pytest.raises(ValueError, match="is not one of raise, clip, offset"):
        nmf(good, 1, negative=policy)


@pytest.mark.parametrize(("option", "value", "word"), [
    ("max_iter", 0, "max_iter must be a positive integer"),
    ("max_iter", 10.5, "max_iter must be a positive integer"),
    ("max_iter", True, "max_iter must be a positive integer"),
    ("tol", -1e-3, "tol must be a finite number >= 0"),
    ("tol", np.nan, "tol must be a finite number >= 0"),
])
def test_iteration_options(good, option, value, word):
    with pytest.raises(ValueError, match=word):
        nmf(good, 1, **{option: value})
    with pytest.raises(ValueError, match=word):
        nnls(good, np.ones((1, 4)), **{option: value})


def test_unknown_init(good):
    with pytest.raises(ValueError, match="Unknown init 'svd'; choose one of nndsvda"):
        nmf(good, 1, init="svd")


def test_unknown_solver_and_backend(good):
    with pytest.raises(ValueError, match="Unknown NNMF solver 'als'"):
        nmf(good, 1, solver="als")
    with pytest.raises(ValueError, match="backend 'tensorflow'"):
        nmf(good, 1, backend="tensorflow")
    with pytest.raises(ValueError, match="backend 'tensorflow'"):
        nnls(good, np.ones((1, 4)), backend="tensorflow")


@pytest.mark.parametrize("random_state", [-1, 1.5, "seed", True])
def test_bad_random_state(good, random_state):
    with pytest.raises((ValueError, TypeError), match="random_state"):
        nmf(good, 1, random_state=random_state)


def test_all_zero_data(good):
    with pytest.raises(ValueError, match="all zeros"):
        nmf(np.zeros_like(good), 1)


def test_constant_data_has_no_variance_for_pca(good):
    with pytest.raises(ValueError, match="no variance"):
        pca(np.ones_like(good), 1)


def test_integer_data_accepted_as_float():
    X = np.random.default_rng(0).integers(1, 1000, size=(12, 5)).astype(np.uint16)
    assert pca(X, 2).W.dtype == np.float32
    assert nnls(X, np.ones((1, 5)), backend="scipy").W.dtype == np.float32
