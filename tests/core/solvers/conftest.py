"""Shared problems and references of the solver-level tests (``core/solvers/``).

The solver functions are pure (arrays in, ``NMFFit`` / ``NNLSFit`` out), so the
tests here call them directly, without ``core.nmf`` / ``core.nnls`` around them.

Fixtures
--------
``nnls_case``
    The builder ``nnls_case(name, n=60) -> (X, H)`` of the named fixed-H NNLS
    problems below, float64, deterministic.
``nnls_ref``
    The SciPy reference: per-pixel objectives and :meth:`NNLSReference.assert_matches`.

A test that takes an argument ``nnls_case_name`` runs once per name in
``NNLS_CASES``.

NNLS problems
-------------
Cases follow SciPy's ``optimize/tests/test_nnls.py`` and gh-20168 / gh-20302:
random and rank-deficient bases, half-zero true solutions, duplicate and all-zero
spectra, nearly collinear spectra (``lambda_min`` of the scaled Gram matrix about
1e-9 and 1e-12), spectra scaled over 1e-5 .. 1e12, a cumulative (monotone-fit)
basis; k from 1 to n_channels, and for the exact active-set solver both code paths
(enumeration for k <= 6, block pivoting above, tabulated for k <= 10 and grouped
beyond).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

NNLS_CASES = ["random", "overlap-noisy", "half-zero-exact", "collinear-exact",
              "collinear-noisy", "collinear-1e-6", "duplicate-zero-exact",
              "duplicate-zero-noisy", "scaled", "rank-deficient", "cumulative", "k6-exact",
              "k6-noisy", "k7", "k11"]


def pytest_generate_tests(metafunc):
    if "nnls_case_name" in metafunc.fixturenames:
        metafunc.parametrize("nnls_case_name", NNLS_CASES)


def gaussian(m, center, width):
    """A unit-height Gaussian line on ``m`` channels spanning [0, 1]."""
    axis = np.linspace(0.0, 1.0, m)
    return np.exp(-0.5 * ((axis - center) / width) ** 2)


def _sparse(rng, n, k, zero=0.5):
    W = rng.gamma(1.0, 1.0, (n, k))
    W[rng.random((n, k)) < zero] = 0.0
    return W


def make_nnls_case(name, n=60):
    """``(X, H)`` of a named fixed-H NNLS problem, float64."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    m = 24
    resonances = np.stack([gaussian(m, c, 0.15) for c in (0.3, 0.4, 0.5, 0.6)])
    noise = 0.01 * rng.standard_normal((n, m))
    if name == "random":
        H = rng.random((4, m))
        return _sparse(rng, n, 4) @ H + noise, H
    if name == "overlap-noisy":
        return _sparse(rng, n, 4) @ resonances + noise, resonances
    if name == "half-zero-exact":                     # true solutions with half zeros
        W = _sparse(rng, n, 4)
        W[:, ::2] = 0.0
        return W @ resonances, resonances
    if name.startswith("collinear"):                  # nearly collinear: ill-conditioned G
        step = {"collinear-exact": 1e-4, "collinear-noisy": 1e-4, "collinear-1e-6": 1e-6}[name]
        H = resonances.copy()
        H[1] = H[0] + step * gaussian(m, 0.7, 0.2)
        X = _sparse(rng, n, 4) @ H
        return (X if name == "collinear-exact" else X + noise), H
    if name.startswith("duplicate-zero"):             # duplicated and all-zero spectra
        H = np.vstack([resonances, resonances[1], np.zeros(m)])
        W = _sparse(rng, n, 6)
        return W @ H + (noise if name.endswith("noisy") else 0.0), H
    if name == "scaled":                              # scales from 1e-5 to 1e12
        H = resonances * 10.0 ** np.array([-5.0, 12.0, 0.0, 6.0])[:, None]
        return _sparse(rng, n, 4) @ resonances + noise, H
    if name == "rank-deficient":                      # more spectra than channels, signed
        return rng.standard_normal((n, 5)), rng.standard_normal((8, 5))
    if name == "cumulative":                          # gh-20168: monotone-fit basis
        N = 16
        counts = rng.integers(0, 40, N).astype(float)
        A = np.diag(counts) @ np.tril(np.ones((N, N)))
        z = np.flatnonzero(counts == 0)
        A[z, z] = 1.0
        A[z, np.minimum(z + 1, N - 1)] = -1.0
        return 100 * rng.random((n, N)), np.ascontiguousarray(A.T)
    if name.startswith("k6"):                         # enumeration with 64-bit set masks
        H = np.stack([gaussian(m, c, 0.12) for c in np.linspace(0.25, 0.75, 6)])
        X = _sparse(rng, n, 6) @ H
        return (X if name == "k6-exact" else X + noise), H
    if name == "k7":                                  # tabulated pivoting
        H = rng.random((7, m))
        return _sparse(rng, n, 7) @ H, H
    if name == "k11":                                 # grouped pivoting
        H = rng.random((11, m))
        return _sparse(rng, n, 11) @ H + noise, H
    raise KeyError(name)


class NNLSReference:
    """``scipy.optimize.nnls`` (Lawson-Hanson, float64) pixel by pixel.

    A solver must reach SciPy's objective ``f = ||x - w H||^2`` per pixel:

        f <= f_scipy * (1 + rel) + floor * ||x||^2

    For an exact solver ``rel = 1e-6``, the accuracy asked of it.  The absolute
    floor only matters for data that the spectra fit exactly (``f_scipy`` at
    rounding level, where a relative comparison means nothing):

    * float64: 1e-20.  SciPy itself, in float64, is only accurate to about
      ``(eps * cond(H))^2 ~ 1e-22`` on the nearly collinear basis (cond ~ 4e4);
      everything else lands at 1e-27 or below (measured).
    * float32: 1e-12.  Returning W in float32 alone moves f by about
      ``eps32^2 ||x||^2 ~ 1e-14 ||x||^2`` (measured 2e-15 .. 4e-14).

    A tolerance-stopped solver passes its own ``floor`` (see the FISTA tests).
    """

    FLOOR = {np.dtype(np.float64): 1e-20, np.dtype(np.float32): 1e-12}

    @staticmethod
    def objective(X, W, H):
        """Per-pixel ``||x - w H||^2`` in float64."""
        R = np.asarray(X, np.float64) - np.asarray(W, np.float64) @ np.asarray(H, np.float64)
        return np.einsum("ij,ij->i", R, R)

    @staticmethod
    def energy(X):
        """Per-pixel ``||x||^2`` in float64 (the objective of ``w = 0``)."""
        X = np.asarray(X, np.float64)
        return np.einsum("ij,ij->i", X, X)

    @staticmethod
    def solve(X, H):
        """SciPy's ``W`` (float64), pixel by pixel."""
        A = np.asarray(H, np.float64).T
        return np.array([scipy_nnls(A, np.asarray(x, np.float64), maxiter=100 * A.shape[1])[0]
                         for x in X]).reshape(len(X), A.shape[1])

    def scipy_objective(self, X, H):
        """Per-pixel optimal objective according to SciPy."""
        return self.objective(X, self.solve(X, H), H)

    def assert_matches(self, X, W, H, *, rel=1e-6, floor=None, f_ref=None):
        """``W`` reaches SciPy's objective on every pixel (see the class docstring)."""
        f = self.objective(X, W, H)
        if f_ref is None:
            f_ref = self.scipy_objective(X, H)
        if floor is None:
            floor = self.FLOOR[np.dtype(np.asarray(X).dtype)]
        excess = f - f_ref * (1 + rel) - floor * self.energy(X)
        worst = int(excess.argmax())
        assert excess.max() <= 0, (
            f"worst pixel {worst}: f={f[worst]:.6g}, scipy={f_ref[worst]:.6g}")


@pytest.fixture
def nnls_case():
    """The builder ``nnls_case(name, n=60) -> (X, H)`` (see the module docstring)."""
    return make_nnls_case


@pytest.fixture
def nnls_ref():
    """The SciPy reference, :class:`NNLSReference`."""
    return NNLSReference()
