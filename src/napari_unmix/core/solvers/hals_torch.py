"""HALS in PyTorch (CPU or CUDA): the algorithm of :mod:`.hals`, operation for operation.

The data stays on the device when it fits its memory budget and is streamed there
in blocks otherwise (:mod:`~napari_unmix.core.streaming`); the factors always stay
there.
"""

from __future__ import annotations

import numpy as np

from ..device import get_torch, resolve_device, to_numpy, to_torch
from ..streaming import BlockSource, plan_blocks
from ._common import NMFFit, SampledErrorStopping, sum_of_squares
from .extrapolation import EXTRAPOLATE, Extrapolation
from .hals import (
    CPU_BLOCK_BYTES,
    H_SWEEPS,
    OMEGA,
    W_SWEEPS,
    check_anchor,
    check_hals_inputs,
    loop_points,
)

__all__ = ["fit_hals_torch"]


def _safe_inverse_torch(torch, diag, eps):
    """See :func:`safe_inverse_np`; the masked-out ``inf`` are never used."""
    ok = (diag > (eps * eps) * diag.max()) & (diag >= torch.finfo(diag.dtype).tiny)
    return torch.where(ok, diag.reciprocal(), 0.0)


def _revive_torch(torch, H, free_t, eps, fallback):
    """In place, without a host sync: see :func:`revive_np`."""
    hn2 = H.double().square().sum(1)
    dead = free_t & ~(hn2 > (eps * eps) * hn2.max())
    top = H.max()
    floor = 2.0 * eps * torch.where(top > 0, top, torch.full_like(top, fallback))
    H.masked_fill_(dead[:, None], floor)


def _balance_torch(torch, Wt, H, free_t, nw2, data_scale=1.0):
    nh2 = (H.double() ** 2).sum(1) / (data_scale * data_scale)
    nw2 = nw2.double()
    ok = free_t & (nw2 > 0) & (nh2 > 0) & torch.isfinite(nw2) & torch.isfinite(nh2)
    ratio = torch.where(ok, nh2 / torch.where(ok, nw2, torch.ones_like(nw2)),
                        torch.ones_like(nw2))
    e = torch.round(0.25 * torch.log2(ratio))
    Wt.mul_(torch.exp2(e).to(Wt.dtype)[:, None])
    factors = torch.exp2(-e).to(H.dtype)
    H.mul_(factors[:, None])
    return factors


def fit_hals_torch(X, W, H, *, max_iter: int, tol: float, locked=None, report=None,
                   track_error_every: int = 10, device: str = "auto",
                   w_sweeps: int = W_SWEEPS, h_sweeps: int = H_SWEEPS,
                   block_bytes: int | None = None, omega: float = OMEGA,
                   anchor_weights=None, anchor_spectra=None, stop=None,
                   budget: int | None = None, extrapolate: bool = EXTRAPOLATE,
                   data_scale: float = 1.0, **_ignored) -> NMFFit:
    """Fit ``X ~ W H`` by HALS in torch, on CPU or CUDA.

    Same algorithm, options and result as :func:`fit_hals_numpy`.  ``X`` is moved
    to ``device`` once and stays there when it fits the device's memory budget;
    otherwise it is streamed there block by block at every pass over the data,
    from pinned host memory on a copy stream, the next block's copy overlapping
    the current block's compute (:mod:`~napari_unmix.core.streaming`).  ``W`` and
    ``H`` stay on the device; no ``n x m`` temporary is built.  Nothing is copied
    back to the host between error samples, so a GPU run synchronises only at the
    samples, and once per iteration while ``extrapolate`` steers by the objective
    (one number; :mod:`~napari_unmix.core.solvers.extrapolation`).

    Parameters
    ----------
    device : str
        torch device, ``"auto"`` for CUDA when available.
    block_bytes : int, optional
        Bytes of ``X`` per pixel block; default: the whole of ``X`` on CUDA (when
        resident), ``CPU_BLOCK_BYTES`` on the CPU.
    stop : SampledErrorStopping, optional
        The stopping rule (default: the sampled relative-improvement rule).
    budget : int, optional
        Bytes of ``X`` that may stay on the device (default
        ``core.streaming.device_memory_budget``: half the free memory of a CUDA
        device, no limit on the CPU); a larger ``X`` is streamed.
    data_scale : float, default 1.0
        The power of two ``X`` is at (see :func:`fit_hals_numpy`).
    """
    free = check_hals_inputs(X, W, H, locked, w_sweeps, h_sweeps, omega)
    lam, H0 = check_anchor(anchor_weights, anchor_spectra, H, free)
    torch = get_torch()
    device = resolve_device(device)
    dtype = X.dtype
    eps = float(np.finfo(dtype).eps)
    n, m = X.shape
    k = H.shape[0]
    if block_bytes is None:
        block_bytes = CPU_BLOCK_BYTES if torch.device(device).type == "cpu" else None
    resident, blocks = plan_blocks(n, m * X.itemsize, device, block_bytes=block_bytes,
                                   budget=budget)
    free_rows = np.flatnonzero(free).tolist()
    data_scale = float(data_scale)
    fallback = data_scale * float(np.sqrt(X.max(initial=0.0) / data_scale))
    with torch.no_grad():
        src = BlockSource(X, blocks, device=device, resident=resident)
        Wt = to_torch(np.ascontiguousarray(W.T, dtype=dtype), device).clone()  # (k, n)
        Ht = to_torch(np.asarray(H, dtype=dtype), device).clone()
        free_t = to_torch(free, device)
        balanced_t = free_t if lam is None else to_torch(free & (lam == 0), device)
        opts = {"dtype": Wt.dtype, "device": Wt.device}
        if lam is not None:
            lam_t = to_torch(lam.astype(dtype), device)
            H0_t = to_torch(np.asarray(H0, dtype=dtype), device)
            lam_H0 = lam_t[:, None] * H0_t

        def penalty():
            if lam is None:
                return 0.0
            return float((lam_t.double() * (Ht.double() - H0_t.double()).square().sum(1)).sum())

        def objective():
            err = src.residual_norm(Wt.T, Ht)
            if lam is None:
                return err
            return float(np.sqrt(err * err + penalty()))

        B, Bh, D, Dh = (torch.empty((k, k), **opts) for _ in range(4))
        Hs, C, Ch = (torch.empty((k, m), **opts) for _ in range(3))
        th = torch.empty(m, **opts)
        Ab = torch.empty((k, max(sl.stop - sl.start for sl in blocks)), **opts)
        tw = torch.empty(Ab.shape[1], **opts)
        # Views made once: a torch call costs microseconds even on tiny tensors
        Bh_rows, Dh_rows, Ch_rows, H_rows = ([A[j] for j in range(k)] for A in (Bh, Dh, Ch, Ht))
        HtT = Ht.T
        views = []                        # per block: everything but the data
        for sl in blocks:
            c = sl.stop - sl.start
            Wb, Ab_b = Wt[:, sl], Ab[:, :c]
            views.append((Wb, Wb.T, [Wb[j] for j in range(k)], Ab_b,
                          [Ab_b[j] for j in range(k)], tw[:c]))
        if src.resident:                  # the data's views too, made once
            data = [(Xb, Xb.T) for _, Xb in src.blocks]

        def data_blocks():
            if src.resident:
                return zip(data, views, strict=True)
            return (((Xb, Xb.T), v) for (_, Xb), v in zip(src.blocks, views, strict=True))

        _balance_torch(torch, Wt, Ht, balanced_t, Wt.double().square().sum(1), data_scale)
        ext = None
        if extrapolate and free_rows:
            ext = Extrapolation(Ht, free, sum_of_squares(X), xp="torch")
        # float64 sums of C and D while the extrapolation decides (.extrapolation)
        exact = None if ext is None or not ext.needs_float64(Wt.dtype) else (
            torch.empty((k, m), dtype=torch.float64, device=Wt.device),
            torch.empty((k, k), dtype=torch.float64, device=Wt.device))
        if stop is None:
            stop = SampledErrorStopping(tol, track_error_every, eps * data_scale,
                                        report=report,
                                        max_iter=max_iter)
        stop.record(0, objective())
        converged = False
        n_iter = 0

        def iteration():
            """One HALS iteration from (W, H), in place (see the numpy version)."""
            # --- W half-step, fused with C = W^T X and D = W^T W (see numpy version)
            torch.mm(Ht, HtT, out=B)
            scale = (omega * _safe_inverse_torch(torch, torch.diagonal(B), eps))[:, None]
            torch.mul(B, scale, out=Bh)
            Bh.fill_diagonal_(omega - 1.0)
            torch.mul(Ht, scale, out=Hs)
            C.zero_()
            D.zero_()
            shares = exact if exact is not None and not ext.off else None
            if shares is not None:
                shares[0].zero_()
                shares[1].zero_()
            for (Xb, XbT), (Wb, WbT, Wb_rows, Ab_b, Ab_rows, t) in data_blocks():
                torch.mm(Hs, XbT, out=Ab_b)
                for _ in range(w_sweeps):
                    for j in range(k):
                        torch.addmv(Ab_rows[j], WbT, Bh_rows[j], alpha=-1, out=t)
                        torch.clamp_min(t, 0, out=Wb_rows[j])
                if shares is None:
                    C.addmm_(Wb, Xb)
                    D.addmm_(Wb, WbT)
                else:
                    W64 = Wb.double()
                    shares[0].addmm_(W64, Xb.double())
                    shares[1].addmm_(W64, W64.T)
            if shares is not None:
                C.copy_(shares[0])
                D.copy_(shares[1])
            # --- H half-step on the free rows
            if free_rows:
                diag = torch.diagonal(D) if lam is None else torch.diagonal(D) + lam_t
                scale = (omega * _safe_inverse_torch(torch, diag, eps))[:, None]
                torch.mul(D, scale, out=Dh)
                Dh.fill_diagonal_(omega - 1.0)
                torch.mul(C if lam is None else C + lam_H0, scale, out=Ch)
                for _ in range(h_sweeps):
                    for j in free_rows:
                        torch.addmv(Ch_rows[j], HtT, Dh_rows[j], alpha=-1, out=th)
                        torch.clamp_min(th, 0, out=H_rows[j])
                _revive_torch(torch, Ht, free_t, eps, fallback)

        if ext is not None:
            W_saved = torch.empty_like(Wt)
            steps = (iteration,
                     lambda _: ext.objective(*(exact if exact is not None and not ext.off
                                               else (C, D)), Ht, penalty()),
                     lambda: W_saved.copy_(Wt), lambda: Wt.copy_(W_saved))
        for it in range(1, max_iter + 1):
            if ext is None:
                iteration()
            else:
                ext.run(Ht, *steps)
            n_iter = it
            balance, sample = loop_points(it, max_iter, stop)
            if balance:
                factors = _balance_torch(torch, Wt, Ht, balanced_t, torch.diagonal(D),
                                         data_scale)
                if ext is not None:
                    ext.rescale(factors)
            if sample:
                if stop.record(it, objective()):
                    converged = True
                    break
        fit = NMFFit(W=np.ascontiguousarray(to_numpy(Wt).T), H=to_numpy(Ht), n_iter=n_iter,
                     converged=converged, history=stop.history)
        fit.extrapolation = None if ext is None else ext.record()
        return fit
