"""Fixed-H NNLS of a dask matrix, block by block: :func:`nnls_dask` (``core.nnls``'s path).

Every pixel is an independent problem, so every block of ``X`` (whole pixel spectra,
:mod:`.blocks`) is solved by ``da.map_blocks`` calling the in-memory engine
(:func:`~napari_unmix.core.solvers.solve_nnls`, the one ``core.nnls`` runs) on that
block alone: the abundances of a pixel are the in-memory ones, bit for bit, whatever
the blocks.  Each block also returns its share of the fit statistics (squared error
and ``||X||^2`` over its solved pixels, iterations, capped and constrained pixels,
Poisson deviance), which are summed into the usual
:class:`~napari_unmix.core.summaries.NNLSSummary`.

Memory.  One pass over ``X``; what is kept is ``W`` (``n_pixels x k``, small next to
``X``), persisted in this process or, under a ``dask.distributed`` Client, on the
cluster's workers.  The result's ``W`` is that persisted dask array (lazy to the
caller: ``np.asarray(result.W)`` or ``result.compute()`` brings it here, and
:func:`~.store.store_maps` writes it to a store block by block).

Inside a task the solver runs on one worker thread (``n_jobs=1``): dask shares the
blocks over its threads or processes.  Progress is reported after every finished
block; a cancel stops the run between blocks.
"""

from __future__ import annotations

import time
import uuid
import warnings

import numpy as np

from .._validation import check_iter_options, check_spectra
from ..data import COMPUTE_FIRST, data_scale
from ..diagnostics import identifiability
from ..poisson import poisson_deviance
from ..progress import Reporter
from ..result import UnmixResult
from ..solvers import check_loss, pick_nnls_solver, solve_nnls
from ..solvers._common import residual_norm, sum_of_squares
from ..solvers.pooled import solved_rows, trusted_sums
from ..solvers.simplex import check_abundance
from ..summaries import NegativeInfo, NNLSSummary
from .blocks import block_stats, checked_input, fitted_max
from .scheduler import active_client, compute, persist

__all__ = ["nnls_blocks", "nnls_dask"]

#: Statistics per block: squared error, ||X||^2, solved pixels, capped pixels,
#: constrained pixels, iterations, converged, deviance.
_N_STATS = 8


def _fit_block(Xb, H, scale, options, poisson):
    Xb = np.asarray(Xb)
    Xs = Xb if scale == 1.0 else Xb / Xb.dtype.type(scale)
    W, info = solve_nnls(Xs, H, n_jobs=1, fit_sums=True, **options)
    if scale != 1.0:
        W *= Xb.dtype.type(scale)
    ok, n_ok = solved_rows(W)
    # the solver's own sums (formed as it went) where it has them, as core.nnls does
    sums = trusted_sums(info["fit_sums"]) if scale == 1.0 and ok is None else None
    if sums is not None:
        sq_err, sq_x = sums
    else:
        Xo, Wo = (Xb, W) if ok is None else (Xb[ok], W[ok])
        sq_err = residual_norm(Xo, Wo, H) ** 2 if Xo.shape[0] else 0.0
        sq_x = sum_of_squares(Xo) if Xo.shape[0] else 0.0
    deviance = poisson_deviance(Xb, W, H).astype(Xb.dtype) if poisson else None
    stats = np.array([sq_err, sq_x, n_ok, info["capped"].sum(), info["active"].sum(),
                      max(info["chunk_iters"], default=0), all(info["chunk_converged"]),
                      0.0 if deviance is None else float(deviance.sum(dtype=np.float64))],
                     dtype=np.float64)
    return W, stats[None], np.flatnonzero(info["capped"]), deviance, info["spec"].algorithm


def _first(t):
    return t[0]


def _stats(t):
    return t[1]


def _capped(t, block_info=None):
    start = block_info[0]["array-location"][0][0] if block_info else 0
    return (t[2] + start).astype(np.int64)[:, None]


def _deviance(t):
    return t[3][:, None]


def nnls_blocks(X, H, *, scale=1.0, options=None, poisson=False):
    """The lazy graph of a blockwise NNLS (nothing computed).

    ``X`` a checked dask matrix, ``H`` the checked spectra, ``options`` the keywords of
    :func:`~napari_unmix.core.solvers.solve_nnls`, ``scale`` the power of two the data is
    divided by for the solver (Poisson loss).  Returns ``([W, stats, capped] (+
    [deviance] for ``poisson``), layer)``: dask arrays sharing one task per block (the
    layer named ``layer``), ``stats`` a row of per-block statistics, ``capped`` the
    capped pixels' indices (n, 1), ``deviance`` (n, 1).  Compute them together (``dask.
    persist(*outputs, optimize_graph=False)``) to solve every block once.
    """
    options = dict(options or {})
    k = H.shape[0]
    nb = X.numblocks[0]
    fit = X.map_blocks(_fit_block, H, scale, options, poisson, dtype=object,
                       meta=np.empty((0, 0), dtype=object),
                       name=f"nnls-block-{uuid.uuid4().hex}")   # a run's own keys: a
    # cancel of its futures on a cluster never takes an equal earlier run's with it
    W = fit.map_blocks(_first, dtype=X.dtype, chunks=(X.chunks[0], (k,)))
    stats = fit.map_blocks(_stats, dtype=np.float64, chunks=((1,) * nb, (_N_STATS,)))
    # (a block's result is a tuple: no drop_axis, which would concatenate them)
    capped = fit.map_blocks(_capped, dtype=np.int64, chunks=((np.nan,) * nb, (1,)))
    outputs = [W, stats, capped]
    if poisson:
        outputs.append(fit.map_blocks(_deviance, dtype=X.dtype, chunks=(X.chunks[0], (1,))))
    return outputs, fit.name


def nnls_dask(X, H, *, solver="auto", backend="auto", tol=1e-4, max_iter=1000,
              chunk_size=None, callback=None, negative="raise", device="auto",
              restart=False, abundance="free", loss="frobenius", component_names=None,
              n_jobs=None) -> UnmixResult:
    """``core.nnls`` for a dask ``X`` (or a CheckedMatrix holding one).

    The options are ``core.nnls``'s.  ``chunk_size`` is ignored: the blocks are the
    dask chunks of ``X`` (rechunk it to change them).  CUDA devices are refused: the
    blocks run on dask's workers.  Returns an :class:`UnmixResult` whose ``W`` is a
    dask array (persisted) and, for the Poisson loss, ``arrays["deviance"]`` too.
    """
    t0 = time.perf_counter()
    data, stats = checked_input(X, negative)
    X, neg_info = data.X, data.negative
    if X.shape[0] == 0:
        raise ValueError("X has no pixel.")
    H = check_spectra(H, n_features=X.shape[1], dtype=X.dtype)
    check_iter_options(tol, max_iter)
    if component_names is not None and len(component_names) != H.shape[0]:
        raise ValueError(f"{len(component_names)} component names for {H.shape[0]} spectra.")
    condition, problems = identifiability(H, names=component_names)
    for msg in problems:
        warnings.warn(f"Fixed-H NNLS: {msg}", UserWarning, stacklevel=3)
    abundance = check_abundance(abundance)
    poisson = check_loss(loss) == "poisson"
    spec = pick_nnls_solver(solver, backend, abundance=abundance, loss=loss)
    if str(device).startswith("cuda"):
        raise ValueError("A dask input runs on dask's workers (CPU): use device='cpu'; to "
                         f"solve it on a CUDA device, {COMPUTE_FIRST}.")
    scale = 1.0
    if poisson:   # the data over the power of two that puts its maximum into [1, 2)
        top = (block_stats(X).max if stats is None else
               fitted_max(stats, neg_info, X.dtype))
        scale = data_scale(np.array([top]))
    options = {"solver": spec.algorithm, "backend": spec.backend, "tol": tol,
               "max_iter": max_iter, "device": "cpu", "restart": restart,
               "abundance": abundance, "loss": loss}
    k = H.shape[0]
    nb = X.numblocks[0]
    outputs, layer = nnls_blocks(X, H, scale=scale, options=options, poisson=poisson)
    report = Reporter(callback, "nnls")
    outputs = persist(*outputs, total=nb,
                      on_block=lambda done, total: report(done, total, None))
    W, stats, capped = outputs[:3]
    s, capped_idx = (np.asarray(a) for a in compute(stats, capped))
    capped_idx = capped_idx.reshape(-1)
    sq_err, sq_x = float(s[:, 0].sum()), float(s[:, 1].sum())
    n_ok, n_capped = int(s[:, 2].sum()), int(s[:, 3].sum())
    chunk_iters = [int(v) for v in s[:, 5]]
    converged = [bool(v) for v in s[:, 6]]
    err = float(np.sqrt(sq_err)) if n_ok else float("nan")
    x_norm = float(np.sqrt(sq_x))
    hit_cap = n_capped > 0 or not all(converged)
    max_chunk_iter = max(chunk_iters) if chunk_iters else 0
    client = active_client()
    summary = NNLSSummary(
        solver=spec.algorithm, backend=spec.backend, exact=spec.exact, n_chunks=nb,
        chunk_size=int(max(X.chunks[0])), chunk_iters=chunk_iters,
        max_chunk_iter=max_chunk_iter, max_iter=int(max_iter), hit_max_iter=bool(hit_cap),
        n_capped_pixels=n_capped,
        capped_pixels=capped_idx[:1000].tolist() if spec.exact or poisson else [],
        reconstruction_err=err, relative_error=err / max(x_norm, np.finfo(float).tiny),
        negative=NegativeInfo.from_dict(neg_info), dtype=str(X.dtype), abundance=abundance,
        n_constraint_active=int(s[:, 4].sum()) if abundance == "sum-le-one" else None,
        loss=loss, n_error_pixels=n_ok, condition_number=condition,
        identifiability=problems, n_jobs=1, device="cpu",
        time_s=time.perf_counter() - t0,
        extra={"chunked": {"n_blocks": nb, "scheduler": "distributed" if client else
                           "local"}})
    arrays = {}
    if poisson:
        arrays["deviance"] = outputs[3][:, 0]
        total = float(s[:, 7].sum())
        summary = summary.replace(deviance=total, mean_deviance=total / X.shape[0])
    if hit_cap:
        from sklearn.exceptions import ConvergenceWarning

        if spec.exact:
            what = (f"{n_capped} pixel(s) hit max_iter={max_iter} and were set to NaN "
                    "(listed in summary['capped_pixels']; the errors are over the other "
                    f"{n_ok} pixels)")
        elif poisson:
            what = (f"{n_capped} pixel(s) stopped at max_iter={max_iter} before reaching "
                    f"tol={tol} (their last iterates are kept; listed in "
                    "summary['capped_pixels'])")
        else:
            what = (f"{sum(not c for c in converged)} of {nb} chunk(s) stopped at "
                    f"max_iter={max_iter} before reaching tol={tol}")
        warnings.warn(f"Fixed-H NNLS: {what}. Raise max_iter and run again.",
                      ConvergenceWarning, stacklevel=3)
    params = {
        "mode": "nnls", "n_components": k, "solver": spec.algorithm, "backend": spec.backend,
        "tol": float(tol), "max_iter": int(max_iter), "chunk_size": chunk_size,
        "negative": negative, "device": device, "restart": bool(restart),
        "abundance": abundance, "loss": loss, "n_jobs": n_jobs,
    }
    return UnmixResult(W=W, H=H.copy(), mode="nnls", backend=spec.backend, device="cpu",
                       n_iter=max_chunk_iter, reconstruction_err=err, summary=summary,
                       params=params, arrays=arrays,
                       component_names=list(component_names or []))
