"""Every solver at every scale; inputs never modified; the same config gives the same bits.

The reliability issue's scale sweep: data x 1e-30 .. x 1e30, in float32 and float64,
through every registered NNMF and NNLS implementation and PCA: the same fit up to the
scale, finite numbers, a relative error that means what it says, and no false
"converged".  Then, for every mode through ``run_analysis``: the caller's arrays are
never modified, and running the same resolved config twice gives identical bits.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from napari_unmix.core import (
    MODES,
    NMF_SOLVERS,
    NNLS_SOLVERS,
    AnalysisConfig,
    ComponentSpec,
    RoiMask,
    nmf,
    nnls,
    pca,
    run_analysis,
)

FACTORS = [1e-30, 1e-10, 1.0, 1e10, 1e30]
DTYPES = [np.float32, np.float64]


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*a, **kw)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    axis = np.linspace(0, 1, 24)
    H = np.stack([0.05 + np.exp(-0.5 * ((axis - c) / 0.1) ** 2) for c in (0.25, 0.5, 0.75)])
    W = rng.uniform(0.0, 1.0, (120, 3)) * (rng.random((120, 3)) < 0.7)
    W[np.arange(120), rng.integers(0, 3, 120)] += 0.5
    X = np.clip(W @ H + 0.005 * rng.standard_normal((120, 24)), 0.0, None)
    return X, W, H


def _params(table):
    return [pytest.param(key, id="/".join(key),
                         marks=[pytest.mark.requires_torch] if spec.needs_torch else [])
            for key, spec in table.items()]


def _fit_quality(res, X):
    """The relative error computed independently, in float64 at unit scale."""
    c = float(np.abs(X).max())
    R = (X.astype(float) - res.W.astype(float) @ res.H.astype(float)) / c
    return float(np.linalg.norm(R) / np.linalg.norm(X.astype(float) / c))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", _params(NNLS_SOLVERS))
def test_every_nnls_solver_at_every_scale(problem, key, dtype):
    X, _, H = problem
    spec = NNLS_SOLVERS[key]
    loss = "poisson" if "frobenius" not in getattr(spec, "losses", ("frobenius",)) \
        else "frobenius"
    abundance = "free" if "free" in getattr(spec, "abundance", ("free",)) else \
        spec.abundance[0]
    ref = _quiet(nnls, X.astype(dtype), H.astype(dtype), solver=key[0], backend=key[1],
                 loss=loss, abundance=abundance, tol=1e-8, max_iter=5000)
    tol = 1e-3 if not spec.exact else (1e-4 if dtype == np.float32 else 1e-9)
    for factor in FACTORS:
        Xc = (X * factor).astype(dtype)
        Hc = H.astype(dtype) if abundance == "free" else (H * factor).astype(dtype)
        res = _quiet(nnls, Xc, Hc, solver=key[0], backend=key[1], loss=loss,
                     abundance=abundance, tol=1e-8, max_iter=5000)
        assert np.isfinite(res.W).all(), factor
        fit = res.W.astype(float) @ res.H.astype(float) / factor
        fit_ref = ref.W.astype(float) @ ref.H.astype(float)
        assert np.linalg.norm(fit - fit_ref) <= tol * np.linalg.norm(fit_ref), factor
        assert res.summary.relative_error == pytest.approx(_fit_quality(res, Xc), rel=1e-3)
        assert np.isfinite(res.reconstruction_err) and res.reconstruction_err > 0


@pytest.mark.parametrize("factor", [1e300, 1e-300])
def test_float64_data_whose_squares_leave_float64_have_a_true_relative_error(problem,
                                                                             factor):
    # the squared norms of 1e300 data overflow float64 (the summary said NaN) and
    # those of 1e-300 data underflow: the norms are summed again scaled
    X, _, H = problem
    Xc = X * factor
    runs = {"nnls": nnls(Xc, H), "nmf": _quiet(nmf, Xc, 3, random_state=0)}
    for name, res in runs.items():
        # against the error recomputed from the result on the data divided by its max
        assert res.summary.relative_error == pytest.approx(_fit_quality(res, Xc),
                                                           rel=1e-6), name
        assert np.isfinite(res.reconstruction_err) and res.reconstruction_err > 0, name
    ref = nnls(X, H)
    assert runs["nnls"].summary.relative_error == pytest.approx(ref.summary.relative_error,
                                                                rel=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", _params(NMF_SOLVERS))
def test_every_nmf_solver_at_every_scale(problem, key, dtype):
    X, W, H = problem
    spec = NMF_SOLVERS[key]
    extra = {}
    if "frobenius" not in getattr(spec, "losses", ("frobenius",)):
        extra["loss"] = "poisson"
    if "free" not in getattr(spec, "abundance", ("free",)):
        extra["abundance"] = spec.abundance[0]
    W0 = W / W.max(axis=0) + 1e-3
    runs = {}
    for factor in FACTORS:
        Xc = (X * factor).astype(dtype)
        runs[factor] = _quiet(nmf, Xc, 3, W0=W0, H0=H * factor, solver=key[0],
                              backend=key[1], max_iter=300, tol=1e-6, **extra)
    ref = runs[1.0]
    fit_ref = ref.W.astype(float) @ ref.H.astype(float)
    for factor, res in runs.items():
        assert np.isfinite(res.W).all() and np.isfinite(res.H).all(), factor
        assert res.W.any() and res.H.any(), factor  # no collapse to zero
        fit = res.W.astype(float) @ res.H.astype(float) / factor
        assert np.linalg.norm(fit - fit_ref) <= 1e-3 * np.linalg.norm(fit_ref), factor
        assert abs(res.summary.relative_error - ref.summary.relative_error) < 1e-3
        # "converged" means a fit at the noise level here, never a collapse
        if res.summary.converged:
            assert res.summary.relative_error < 0.05


@pytest.mark.parametrize("dtype", DTYPES)
def test_pca_at_every_scale(problem, dtype):
    X, _, _ = problem
    ref = pca(X.astype(dtype), 3)
    for factor in FACTORS:
        res = pca((X * factor).astype(dtype), 3)
        np.testing.assert_allclose(np.abs(res.H), np.abs(ref.H), atol=1e-4)
        assert res.summary.relative_error == pytest.approx(ref.summary.relative_error,
                                                           rel=1e-3)
        assert res.summary.constant_channels == []


# ------------------------------------------------------------------ purity, repeatability
def _configs(stack_shape, X):
    masks = []
    for j in range(3):
        m = np.zeros(stack_shape[1:], dtype=bool)
        m.reshape(-1)[np.argsort(-X[:, j])[:6]] = True
        masks.append(m)
    comps = [ComponentSpec(f"c{j}", h_source=RoiMask(m)) for j, m in enumerate(masks)]
    for mode, spec in MODES.items():
        if spec.seeded:
            yield mode, AnalysisConfig(mode=mode, components=comps, random_state=None)
        else:
            yield mode, AnalysisConfig(mode=mode, n_components=3, random_state=None)


@pytest.mark.parametrize("mode", list(MODES))
def test_inputs_are_never_modified_and_the_same_config_gives_the_same_bits(problem, mode):
    X, W, _ = problem
    stack = np.ascontiguousarray(X.T.reshape(24, 10, 12)).astype(np.float32)
    cfg = dict(_configs(stack.shape, W))[mode]
    before = stack.copy()
    masks_before = [c.h_source.mask.copy() for c in cfg.components]
    first = _quiet(run_analysis, stack, cfg, spectral_axis=0)
    assert stack.tobytes() == before.tobytes()
    for c, m in zip(cfg.components, masks_before, strict=True):
        assert c.h_source.mask.tobytes() == m.tobytes()
    again = _quiet(run_analysis, stack, first.config, spectral_axis=0)
    assert again.W.tobytes() == first.W.tobytes() and again.H.tobytes() == first.H.tobytes()
    assert again.config.to_json() == first.config.to_json()
