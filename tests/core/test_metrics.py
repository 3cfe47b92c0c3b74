"""Ground-truth scores: spectral angles, component matching, abundance RMSE."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from napari_unmix.core.metrics import (
    abundance_errors,
    abundance_rmse,
    match_components,
    mean_spectral_angle,
    score_against_truth,
    spectral_angle,
)

# -- spectral_angle -------------------------------------------------------------------


@pytest.mark.parametrize("a, b, expected", [
    ([1, 0], [0, 1], np.pi / 2),
    ([1, 0], [1, 1], np.pi / 4),
    ([1, 0], [-1, 0], np.pi),
    ([1, 2, 3], [2, 4, 6], 0.0),  # scale does not matter
    ([1, 2, 2], [2, 1, 2], np.arccos(8 / 9)),  # |a| = |b| = 3, a.b = 8
    ([3, 4], [4, 3], np.arccos(24 / 25)),
])
def test_spectral_angle_hand_computed(a, b, expected):
    assert spectral_angle(a, b) == pytest.approx(expected, abs=1e-7)
    assert spectral_angle(b, a) == pytest.approx(expected, abs=1e-7)


def test_spectral_angle_of_zero_spectrum_is_undefined():
    assert np.isnan(spectral_angle([0, 0, 0], [1, 2, 3]))


def test_spectral_angle_broadcasts():
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out = spectral_angle(A[:, None, :], A[None, :, :])
    assert out.shape == (3, 3)
    np.testing.assert_allclose(np.diag(out), 0.0, atol=1e-7)
    assert out[0, 1] == pytest.approx(np.pi / 2)
    assert out[0, 2] == pytest.approx(np.pi / 4)


def test_spectral_angle_needs_same_length():
    with pytest.raises(ValueError, match="3 and 2 channels"):
        spectral_angle([1, 2, 3], [1, 2])


# -- matching -------------------------------------------------------------------------


@pytest.fixture
def spectra():
    x = np.linspace(0, 1, 40)
    return np.stack([np.exp(-0.5 * ((x - c) / 0.07) ** 2) + 0.02 for c in (0.15, 0.35, 0.55, 0.8)])


def test_matching_recovers_a_permutation(spectra):
    perm = np.array([2, 0, 3, 1])  # est j is true perm[j]
    scales = np.array([0.5, 3.0, 1.7, 0.01])
    rng = np.random.default_rng(0)
    H_est = spectra[perm] * scales[:, None] * (1 + 0.01 * rng.standard_normal(spectra[perm].shape))
    m = match_components(spectra, H_est)
    np.testing.assert_array_equal(m.true_index, np.arange(4))
    # the estimate paired with true i is the j with perm[j] == i
    np.testing.assert_array_equal(perm[m.est_index], np.arange(4))
    assert np.all(m.angle < 0.02)
    assert mean_spectral_angle(spectra, H_est) == pytest.approx(m.angle.mean())


def test_matching_is_the_optimal_assignment():
    rng = np.random.default_rng(5)
    H_true = rng.random((5, 12))
    H_est = rng.random((5, 12))
    m = match_components(H_true, H_est)
    angles = spectral_angle(H_true[:, None], H_est[None])
    best = min(sum(angles[i, p[i]] for i in range(5)) for p in itertools.permutations(range(5)))
    assert m.angle.sum() == pytest.approx(best)
    # this instance tells an optimal assignment from a greedy one (best pair first)
    left, greedy = angles.copy(), 0.0
    for _ in range(5):
        i, j = np.unravel_index(np.argmin(left), left.shape)
        greedy += angles[i, j]
        left[i, :] = left[:, j] = np.inf
    assert greedy > best + 0.1


def test_matching_with_different_numbers_of_components(spectra):
    # more estimates than truths: the extra one is left out
    H_est = np.vstack([spectra[::-1], np.ones(40)])
    m = match_components(spectra, H_est)
    np.testing.assert_array_equal(m.est_index, [3, 2, 1, 0])
    # fewer estimates: only that many pairs
    m = match_components(spectra, spectra[[3, 1]])
    assert len(m.true_index) == 2
    np.testing.assert_array_equal(m.true_index, [1, 3])
    np.testing.assert_array_equal(m.est_index, [1, 0])


def test_zero_estimate_is_matched_last_and_reported_as_nan(spectra):
    H_est = spectra.copy()
    H_est[2] = 0.0
    m = match_components(spectra, H_est)
    np.testing.assert_array_equal(m.est_index, np.arange(4))
    assert np.isnan(m.angle[2]) and np.all(m.angle[[0, 1, 3]] < 1e-7)
    assert np.isnan(mean_spectral_angle(spectra, H_est))


# -- abundances -----------------------------------------------------------------------


@pytest.fixture
def truth(spectra):
    rng = np.random.default_rng(1)
    W = rng.random((200, 4))
    W[rng.random(W.shape) < 0.3] = 0.0
    return W, spectra


def test_rescaled_permuted_estimate_scores_zero(truth):
    W, H = truth
    perm = np.array([1, 3, 0, 2])
    scales = np.array([10.0, 0.1, 2.0, 0.7])
    W_est = W[:, perm] * scales  # same product W H: the NNMF scale ambiguity
    H_est = H[perm] / scales[:, None]
    np.testing.assert_allclose(W_est @ H_est, W @ H)
    assert abundance_rmse(W, W_est, H_true=H, H_est=H_est) == pytest.approx(0.0, abs=1e-12)
    assert abundance_rmse(W, W_est, H_true=H, H_est=H_est, scale="sum-to-one") == \
        pytest.approx(0.0, abs=1e-12)
    # without removing the scale the same estimate looks bad
    assert abundance_rmse(W, W_est, H_true=H, H_est=H_est, scale="none") > 0.1


def test_lstsq_scale_hand_computed():
    w_true = np.array([[1.0], [2.0], [3.0]])
    w_est = np.array([[2.0], [4.0], [7.0]])
    c = (2 + 8 + 21) / (4 + 16 + 49)  # argmin_c ||w_true - c w_est||
    expected = np.sqrt(np.mean((w_true[:, 0] - c * w_est[:, 0]) ** 2))
    m = match_components([[1.0, 0.0]], [[1.0, 0.0]])
    assert abundance_rmse(w_true, w_est, matching=m) == pytest.approx(expected)
    raw = np.sqrt(np.mean((w_true - w_est) ** 2))
    assert abundance_rmse(w_true, w_est, matching=m, scale="none") == pytest.approx(raw)


def test_sum_to_one_hand_computed():
    # two components, two pixels; estimate spectra twice the true ones
    W_true = np.array([[0.25, 0.75], [0.5, 0.5]])
    H_true = np.eye(2)
    W_est = np.array([[0.5, 0.5], [0.5, 0.5]])  # on the H_est = 2 H_true scale
    H_est = 2 * np.eye(2)
    # rescale: W_est * 2 -> [[1, 1], [1, 1]] -> per pixel [[.5, .5], [.5, .5]]
    errs = abundance_errors(W_true, W_est, H_true=H_true, H_est=H_est, scale="sum-to-one")
    np.testing.assert_allclose(errs, [np.sqrt((0.25**2 + 0) / 2)] * 2)


def test_per_component_errors_follow_the_matching(truth):
    W, H = truth
    W_est = W[:, ::-1].copy()
    W_est[:, 0] += 0.5  # damage the estimate of true component 3
    errs = abundance_errors(W, W_est, H_true=H, H_est=H[::-1], scale="none")
    np.testing.assert_allclose(errs[:3], 0.0, atol=1e-12)
    assert errs[3] == pytest.approx(0.5)


def test_abundance_inputs_are_checked(truth):
    W, H = truth
    with pytest.raises(ValueError, match="H_true and H_est"):
        abundance_rmse(W, W)
    with pytest.raises(ValueError, match="pixels"):
        abundance_rmse(W, W[:10], H_true=H, H_est=H)
    with pytest.raises(ValueError, match="scale"):
        abundance_rmse(W, W, H_true=H, H_est=H, scale="max")
    m = match_components(H, H)
    with pytest.raises(ValueError, match="sum-to-one"):
        abundance_rmse(W, W, matching=m, scale="sum-to-one")


def test_score_against_truth_report(truth):
    W, H = truth
    s = score_against_truth(W, H, W[:, [1, 0, 2, 3]], H[[1, 0, 2, 3]],
                            names=["a", "b", "c", "d"])
    assert s["mean_spectral_angle"] == pytest.approx(0.0, abs=1e-7)
    assert s["abundance_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert [p["true"] for p in s["pairs"]] == ["a", "b", "c", "d"]
    assert [p["est_index"] for p in s["pairs"]] == [1, 0, 2, 3]
    assert s["abundance_scale"] == "lstsq"
