"""NNMF through scikit-learn (``mu`` and ``cd`` solvers), used unchanged.

The Poisson loss is scikit-learn's ``beta_loss="kullback-leibler"``, which only its
``mu`` solver fits; the fit's history then holds the divergence ``D(X || WH)``.

scikit-learn applies its own stopping rule (see ``sklearn.decomposition.NMF``);
``n_iter`` values are therefore not comparable with the project's own solvers for
the same ``tol``.  scikit-learn offers no per-iteration hook, so progress is only
reported at the start and the end and a run cannot be cancelled midway.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._common import NMFFit, kl_divergence, residual_norm

__all__ = ["fit_sklearn"]


def fit_sklearn(X, W, H, *, solver: str, max_iter: int, tol: float, locked=None,
                report=None, random_state=None, loss: str = "frobenius",
                **_ignored) -> NMFFit:
    """Run ``sklearn.decomposition.non_negative_factorization`` from ``W``, ``H``.

    ``loss="poisson"`` runs ``beta_loss="kullback-leibler"`` (``solver="mu"`` only).

    ``locked`` may only lock all rows (``update_H=False``) or none: scikit-learn
    cannot keep a subset of H fixed.  With every row locked scikit-learn starts ``W``
    from its own initial value (it does not take a custom ``W`` then), so ``W`` is
    not passed.
    """
    from sklearn.decomposition import non_negative_factorization
    from sklearn.exceptions import ConvergenceWarning

    k = H.shape[0]
    update_H = True
    if locked is not None and np.any(locked):
        if not np.all(locked):
            raise ValueError(
                "backend='sklearn' cannot lock a subset of the spectra; use the 'hals' or "
                "'mu' solver of the numpy or torch backend for partial locking."
            )
        update_H = False
    if loss not in ("frobenius", "poisson"):
        raise ValueError(f"Unknown loss {loss!r}; choose 'frobenius' or 'poisson'.")
    poisson = loss == "poisson"
    if poisson and solver != "mu":
        raise ValueError(f"scikit-learn's {solver!r} solver cannot fit the Poisson loss; "
                         "use solver='mu'.")
    top = float(X.max())
    floor = float(np.finfo(X.dtype).eps) * (top if top > 0 else 1.0)  # as in ``kl``

    def objective(W_, H_):
        return kl_divergence(X, W_, H_, floor=floor) if poisson else residual_norm(X, W_, H_)

    e0 = objective(W, H)
    if report is not None:
        report(0, max_iter, e0)
    with warnings.catch_warnings():
        # the caller decides how to report hitting the cap, from n_iter
        warnings.simplefilter("ignore", ConvergenceWarning)
        W_out, H_out, n_iter = non_negative_factorization(
            X, W=W.copy() if update_H else None, H=H.copy(), n_components=k, init="custom",
            update_H=update_H,
            solver=solver, beta_loss="kullback-leibler" if poisson else "frobenius", tol=tol,
            max_iter=max_iter,
            alpha_W=0.0, alpha_H=0.0, random_state=random_state,
        )
    err = objective(W_out, H_out)
    if report is not None:
        report(n_iter, max_iter, err, fraction=1.0)
    return NMFFit(W=W_out, H=H_out if update_H else H.copy(), n_iter=int(n_iter),
                  converged=n_iter < max_iter, history=[(0, e0), (int(n_iter), err)])
