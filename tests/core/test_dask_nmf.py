"""NNMF of dask input (core.chunked.hals / nmf): the in-memory HALS, one pass per iteration."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

da = pytest.importorskip("dask.array")

import napari_unmix.core as uc  # noqa: E402
from napari_unmix.core.chunked import is_dask_array  # noqa: E402


def scene(seed=0, n=40 * 48, m=16, k=4, noise=0.02):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, m)
    H = np.stack([np.exp(-0.5 * ((x - c) / 0.12) ** 2) for c in np.linspace(0.1, 0.9, k)])
    W = rng.gamma(1.0, 1.0, size=(n, k))
    X = np.abs(W @ H + noise * rng.standard_normal((n, m))).astype(np.float32)
    return X, H.astype(np.float32)


@pytest.fixture
def data():
    X, H = scene()
    rng = np.random.default_rng(3)
    W0 = rng.random((X.shape[0], 4)).astype(np.float32)
    return X, da.from_array(X, chunks=(300, 16)), W0, (H + 0.1).astype(np.float32)


def _same_fit(res, ref, rel=1e-5):
    assert res.is_lazy and is_dask_array(res.W)
    assert res.n_iter == ref.n_iter
    assert res.summary.stopped_by == ref.summary.stopped_by
    h_ref, h = np.array(ref.summary.error_history), np.array(res.summary.error_history)
    assert h.shape == h_ref.shape and np.array_equal(h[:, 0], h_ref[:, 0])
    # float32 shares summed over other blocks, the Gram identity for the residual: a few
    # 1e-6 apart (measured 3.5e-6 at most)
    np.testing.assert_allclose(h[:, 1], h_ref[:, 1], rtol=1e-5)
    assert res.reconstruction_err == pytest.approx(ref.reconstruction_err, rel=1e-5)
    assert res.summary.relative_error == pytest.approx(ref.summary.relative_error, rel=1e-5)
    W = np.asarray(res.W)
    assert np.abs(W - ref.W).max() <= rel * np.abs(ref.W).max() * 10
    assert np.abs(res.H - ref.H).max() <= rel * np.abs(ref.H).max() * 10


@pytest.mark.parametrize("options", [
    {},
    {"anchor": 1.0},
    {"anchor": [1.0, 0.0, 2.0, np.inf]},
    {"locked": [1]},
], ids=["free", "anchored", "anchor-per-row", "locked"])
def test_seeded_same_iterations_and_errors(data, options):
    X, Xd, W0, H0 = data
    ref = uc.nmf(X, 4, W0=W0, H0=H0, solver="hals", **options)
    res = uc.nmf(Xd, 4, W0=W0, H0=H0, **options)
    _same_fit(res, ref)
    if "locked" in options or np.isinf(np.atleast_1d(options.get("anchor", 0.0))).any():
        lock = res.summary.locked
        assert np.array_equal(res.H[lock], H0[lock])
    assert res.summary.anchor == ref.summary.anchor
    assert res.summary.init.keys() == ref.summary.init.keys()
    np.testing.assert_allclose(res.summary.init.get("balanced", []),
                               ref.summary.init.get("balanced", []), rtol=1e-7)


@pytest.mark.parametrize("units", [1e-20, 1e20])
@pytest.mark.parametrize("given", ["H0", "W0 and H0"])
def test_seeds_far_from_the_data_s_units_fit_as_in_memory(data, units, given):
    """Float32 data 1e20 times smaller or larger than its seed spectra: the dask fit
    returned NaN maps ("overflow encountered in matmul"); it now shares the power of two
    between map and spectrum as the in-memory fit does, with the same fit."""
    X, _, W0, H0 = data
    Xu = X * np.float32(units)
    kw = dict(H0=H0, W0=W0 if given == "W0 and H0" else None, anchor=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", RuntimeWarning)
        ref = uc.nmf(Xu, 4, solver="hals", **kw)
        res = uc.nmf(da.from_array(Xu, chunks=(300, 16)), 4, **kw)
    assert np.isfinite(np.asarray(res.W)).all()
    assert res.summary.init["scale moved to H"] == ref.summary.init["scale moved to H"]
    if given == "W0 and H0":
        _same_fit(res, ref)
    else:  # W0 fitted by each one's own NNLS
        assert res.reconstruction_err == pytest.approx(ref.reconstruction_err, rel=1e-3)


def test_seeded_from_a_dask_w0_and_from_h0_alone(data):
    X, Xd, W0, H0 = data
    ref = uc.nmf(X, 4, W0=W0, H0=H0, solver="hals")
    _same_fit(uc.nmf(Xd, 4, W0=da.from_array(W0, chunks=(500, 4)), H0=H0), ref)
    ref_h = uc.nmf(X, 4, H0=H0, solver="hals", anchor=1.0)
    res_h = uc.nmf(Xd, 4, H0=H0, anchor=1.0)
    assert res_h.summary.init["W0"].startswith("nnls")
    assert res_h.reconstruction_err == pytest.approx(ref_h.reconstruction_err, rel=1e-3)


def test_all_locked_is_exact_nnls(data):
    X, Xd, W0, H0 = data
    ref = uc.nmf(X, 4, W0=W0, H0=H0, locked=[0, 1, 2, 3])
    res = uc.nmf(Xd, 4, W0=W0, H0=H0, locked=[0, 1, 2, 3])
    assert res.summary.stopped_by == ref.summary.stopped_by == "exact"
    assert np.array_equal(res.H, ref.H)
    assert res.reconstruction_err == pytest.approx(ref.reconstruction_err, rel=1e-6)


def test_random_within_half_a_percent(data):
    X, Xd, _, _ = data
    ref = uc.nmf(X, 4, random_state=0)
    res = uc.nmf(Xd, 4, random_state=0)
    assert res.summary.stopping_rule == ref.summary.stopping_rule
    assert abs(res.reconstruction_err / ref.reconstruction_err - 1) < 0.005
    assert res.params["random_state"] == 0
    again = uc.nmf(Xd, 4, random_state=0)
    assert np.array_equal(np.asarray(again.W), np.asarray(res.W))


def test_max_iter_cap_warns_and_flags(data):
    _, Xd, W0, H0 = data
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        res = uc.nmf(Xd, 4, W0=W0, H0=H0, max_iter=3, tol=1e-12)
    assert res.summary.hit_max_iter and res.summary.stopped_by == "max_iter"
    assert res.n_iter == 3


def test_negative_policy_and_refusals(data):
    X, _, W0, H0 = data
    neg = X - np.float32(0.05)
    Xd = da.from_array(neg, chunks=(300, 16))
    with pytest.raises(ValueError, match="negative"):
        uc.nmf(Xd, 4)
    ref = uc.nmf(neg, 4, W0=W0, H0=H0, solver="hals", negative="offset")
    res = uc.nmf(Xd, 4, W0=W0, H0=H0, negative="offset")
    assert res.summary.negative.to_dict() == ref.summary.negative.to_dict()
    assert res.reconstruction_err == pytest.approx(ref.reconstruction_err, rel=1e-5)
    with pytest.raises(ValueError, match="HALS"):
        uc.nmf(Xd, 4, solver="mu", negative="clip")
    with pytest.raises(ValueError, match="least squares"):
        uc.nmf(Xd, 4, loss="poisson", negative="clip")


def test_progress_per_sample_and_cancel(data):
    _, Xd, W0, H0 = data
    seen = []
    res = uc.nmf(Xd, 4, W0=W0, H0=H0, callback=lambda info: seen.append(info.iteration))
    assert seen == [i for i, _ in res.summary.error_history]
    with pytest.raises(uc.Cancelled):
        uc.nmf(Xd, 4, W0=W0, H0=H0, callback=lambda info: info.iteration < 20)


def test_progress_errors_are_in_the_data_units(data):
    X, _, W0, H0 = data
    Xd = da.from_array(8.0 * X, chunks=(300, 16))
    infos = []
    res = uc.nmf(Xd, 4, W0=W0, H0=H0, tol=1e-3, max_iter=2000, track_error_every=5,
                 callback=infos.append)
    assert res.summary.data_scale != 1.0
    history = dict(res.summary.error_history)
    reported = [(i.iteration, i.error) for i in infos if i.error is not None]
    assert reported
    for it, err in reported:
        assert err == pytest.approx(history[it], rel=1e-12)
