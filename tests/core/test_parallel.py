"""Every core (issue 11): ``n_jobs`` never changes a result, and is recorded.

The numpy solvers and PCA share fixed pixel blocks over ``n_jobs`` worker threads
(``core.parallel``) and sum the blocks' shares in block order, so ``n_jobs=1`` and
``n_jobs=2`` must give bit-identical factors, errors and histories, for every
registered NNMF and NNLS implementation (the torch ones run on the CPU here).
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import AnalysisConfig, nmf, nnls, pca, run_analysis
from napari_unmix.core.init import initialize_factors
from napari_unmix.core.parallel import (
    Workers,
    available_cores,
    check_n_jobs,
    resolve_n_jobs,
    single_threaded,
)
from napari_unmix.core.solvers import NMF_SOLVERS, NNLS_SOLVERS, solve_nnls
from napari_unmix.core.solvers.hals import CPU_BLOCK_BYTES

TORCH = pytest.mark.requires_torch


#: Pixels of 48 float32 channels making three of HALS's default blocks: through
#: ``core.nmf`` (default blocks) two workers then have blocks to share.
N_BLOCKS3 = 3 * CPU_BLOCK_BYTES // (48 * 4)


def _problem(n=12000, m=48, k=4, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    nu = np.linspace(0, 1, m)
    H = np.exp(-0.5 * ((nu[None] - np.linspace(0.3, 0.7, k)[:, None]) / 0.12) ** 2)
    W = rng.exponential(1.0, (n, k)) * (rng.random((n, k)) < 0.5)
    X = np.maximum(W @ H + noise * rng.standard_normal((n, m)), 0)
    return X.astype(np.float32), H.astype(np.float32)


def _marks(key, spec):
    return [TORCH] if spec.needs_torch else []


NMF_KEYS = [pytest.param(key, marks=_marks(key, s), id="/".join(key))
            for key, s in NMF_SOLVERS.items()]
NNLS_KEYS = [pytest.param(key, marks=_marks(key, s), id="/".join(key))
             for key, s in NNLS_SOLVERS.items()]


def _same(a, b):
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)


@pytest.mark.parametrize("key", NMF_KEYS)
def test_nmf_solvers_bit_identical_for_every_n_jobs(key):
    """Each registered NNMF implementation, called directly with small blocks (many
    blocks per worker) and through ``core.nmf`` with its default blocks."""
    X, _ = _problem()
    spec = NMF_SOLVERS[key]
    W0, H0 = initialize_factors(X, 4, init="nndsvda", random_state=0)
    W0, H0 = W0 + 1e-3, H0 + 1e-3     # no exact zeros (multiplicative updates)
    kw = dict(solver=spec.algorithm, max_iter=15, tol=0.0, track_error_every=5,
              device="cpu", block_bytes=64 * 1024)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = spec.func(X, W0, H0, n_jobs=1, **kw)
        two = spec.func(X, W0, H0, n_jobs=2, **kw)
        _same(one, two)
        assert one.history == two.history
        big, _ = _problem(n=N_BLOCKS3)
        for loss in sorted(spec.losses):
            a = nmf(big, 4, solver=key[0], backend=key[1], random_state=0, max_iter=25,
                    n_jobs=1, loss=loss)
            b = nmf(big, 4, solver=key[0], backend=key[1], random_state=0, max_iter=25,
                    n_jobs=2, loss=loss)
            _same(a, b)
            assert a.summary.error_history == b.summary.error_history
            assert a.summary.relative_error == b.summary.relative_error


def test_nmf_sum_constraint_and_seeded_runs_bit_identical():
    X, H = _problem(n=N_BLOCKS3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for kw in (dict(abundance="sum-to-one", max_iter=8),
                   dict(H0=H * 1.1, anchor=1.0, max_iter=30),           # anchored HALS
                   dict(H0=H * 1.1, max_iter=30),                       # MU from seeds
                   dict(H0=H, locked=[0], solver="hals", max_iter=30),  # a locked row
                   dict(H0=H, locked=[0, 1, 2, 3])):                    # all locked: NNLS
            a = nmf(X, 4, random_state=0, n_jobs=1, **kw)
            b = nmf(X, 4, random_state=0, n_jobs=2, **kw)
            _same(a, b)


@pytest.mark.parametrize("key", NNLS_KEYS)
def test_nnls_solvers_bit_identical_for_every_n_jobs(key):
    X, H = _problem()
    spec = NNLS_SOLVERS[key]
    losses = sorted(spec.losses)
    for loss in losses:
        kw = dict(solver=key[0], backend=key[1], device="cpu", loss=loss)
        if key == ("lawson-hanson", "scipy"):
            Xs = X[:3000]
        else:
            Xs = X
        a, ia = solve_nnls(Xs, H, n_jobs=1, block_bytes=32 * 1024, **kw)
        b, ib = solve_nnls(Xs, H, n_jobs=2, block_bytes=32 * 1024, **kw)
        np.testing.assert_array_equal(a, b)
        assert ia["chunk_iters"] == ib["chunk_iters"] and ib["n_jobs"] == 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            r1, r2 = nnls(Xs, H, n_jobs=1, **kw), nnls(Xs, H, n_jobs=2, **kw)
        np.testing.assert_array_equal(r1.W, r2.W)
        assert r1.summary.reconstruction_err == r2.summary.reconstruction_err
        assert r1.summary.n_jobs == 1 and r2.summary.n_jobs == min(2, -(-Xs.nbytes // 2**21))
        assert r2.summary.device == "cpu" and r2.params["n_jobs"] == 2
    for abundance in sorted(spec.abundance - {"free"}):
        a, _ = solve_nnls(X[:6000], H, solver=key[0], backend=key[1], abundance=abundance,
                          n_jobs=1, block_bytes=32 * 1024, device="cpu")
        b, _ = solve_nnls(X[:6000], H, solver=key[0], backend=key[1], abundance=abundance,
                          n_jobs=2, block_bytes=32 * 1024, device="cpu")
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("standardize", [True, False])
def test_pca_bit_identical_for_every_n_jobs(standardize):
    X, _ = _problem(n=20000)
    a = pca(X, 3, standardize=standardize, n_jobs=1)
    b = pca(X, 3, standardize=standardize, n_jobs=2)
    _same(a, b)
    assert a.summary.reconstruction_err == b.summary.reconstruction_err
    assert a.explained_variance_ratio.tobytes() == b.explained_variance_ratio.tobytes()
    assert (a.summary.n_jobs, b.summary.n_jobs) == (1, 2)
    assert b.params["n_jobs"] == 2 and b.summary.device == "cpu"


def test_summaries_record_n_jobs_and_device():
    X, H = _problem(n=N_BLOCKS3)
    res = nmf(X, 4, random_state=0, n_jobs=2, solver="hals", backend="numpy")
    assert res.summary.n_jobs == 2 and res.summary.device == "cpu"
    assert res.params["n_jobs"] == 2
    one = nmf(X[:2000], 4, random_state=0, n_jobs=1)
    assert one.summary.n_jobs == 1
    default = nnls(X, H)
    assert default.summary.n_jobs == min(available_cores(), default.summary.n_jobs)
    assert default.summary.n_jobs >= 1 and default.params["n_jobs"] is None
    assert json.loads(json.dumps(res.summary.to_dict()))["n_jobs"] == 2


def test_n_jobs_values():
    cores = len(os.sched_getaffinity(0))
    assert resolve_n_jobs(None) == resolve_n_jobs(-1) == cores == available_cores()
    assert resolve_n_jobs(3) == 3 and check_n_jobs(2.0) == 2 and check_n_jobs(None) is None
    with pytest.raises(ValueError, match="n_jobs=0 would run no worker"):
        check_n_jobs(0)
    with pytest.raises(ValueError, match="n_jobs=-2 is not supported"):
        check_n_jobs(-2)
    for bad in (True, 1.5, "2"):
        with pytest.raises(ValueError, match="whole number"):
            check_n_jobs(bad)
    for fn in (lambda: nnls(*_problem(n=50), n_jobs=0),
               lambda: nmf(_problem(n=50)[0], 2, n_jobs=-2),
               lambda: pca(_problem(n=50)[0], 2, n_jobs=0)):
        with pytest.raises(ValueError, match="n_jobs"):
            fn()


def test_workers_order_and_nesting():
    with Workers(2) as pool:
        assert pool.n == 2
        assert pool.map(lambda i: i * i, range(50)) == [i * i for i in range(50)]
        with single_threaded():          # nested: nothing to set up
            pass
    assert Workers(8, n_tasks=3).n == 3 and Workers(None, n_tasks=1).n == 1


def test_config_n_jobs_validated_and_passed():
    assert AnalysisConfig(mode="pca", n_components=2).n_jobs is None
    cfg = AnalysisConfig(mode="pca", n_components=2, n_jobs=2)
    assert AnalysisConfig.from_json(cfg.to_json()).n_jobs == 2
    assert AnalysisConfig(mode="nmf", n_components=2, n_jobs=2.0).n_jobs == 2
    with pytest.raises(ValueError, match="n_jobs=0 would run no worker"):
        AnalysisConfig(mode="nmf", n_components=2, n_jobs=0)
    with pytest.raises(ValueError, match="n_jobs=-2 is not supported"):
        AnalysisConfig(mode="nmf", n_components=2, n_jobs=-2)
    from napari_unmix.core import MODES

    assert all(spec.uses("n_jobs") for spec in MODES.values())
    X, _ = _problem(n=4096, m=16)
    stack = X.T.reshape(16, 64, 64)
    for mode in ("pca", "nmf"):
        res = run_analysis(stack, AnalysisConfig(mode=mode, n_components=3, n_jobs=1,
                                                 random_state=0), spectral_axis=0)
        assert res.summary.n_jobs == 1 and res.config.n_jobs == 1
