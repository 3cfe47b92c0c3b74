"""FISTA with and without adaptive restart: objective gap after a fixed number of iterations.

Runs the torch FISTA backend of fixed-H NNLS on the benchmark stack
(``_data.make_stack``) with ``tol=0`` for each ``--iters`` value, with and without
``restart=True``, and prints the wall time, time per iteration and the objective gap
``(F - F*) / F*`` against the exact active-set optimum ``F*``.  On the ill-conditioned
benchmark basis restart pays off at tight tolerances (more iterations); on the CPU
each restarted iteration costs several plain ones (torch's per-operation overhead
dominates at k = 5), so compare the gap at equal *time* as well as at equal
iterations.

    python benchmarks/fista_restart.py [--pixels 32768] [--iters 100,300,1000,3000]
        [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _data import make_stack

import napari_unmix.core as uc
from napari_unmix.core.device import get_torch


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pixels", type=int, default=32768)
    ap.add_argument("--iters", default="100,300,1000,3000")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch = get_torch()
    torch.set_num_threads(args.threads)

    s = make_stack(n_pixels=args.pixels)
    X, H = s.X, s.H_true.astype(np.float32)
    X64, H64 = X.astype(np.float64), H.astype(np.float64)

    def objective(W):
        R = X64 - W.astype(np.float64) @ H64
        return 0.5 * float(np.einsum("ij,ij->", R, R))

    F_star = objective(uc.nnls(X, H, solver="active-set").W)
    print(f"X {X.shape} float32, k = {H.shape[0]}, device {args.device}, "
          f"threads {args.threads}; F* = {F_star:.8e} (active set)")
    for restart in (False, True):  # warm-up: torch's first calls are slow
        uc.nnls(X[:1024], H, solver="fista", backend="torch", device=args.device,
                tol=0.0, max_iter=10, restart=restart)
    print(f"{'iterations':>10} {'restart':>8} {'time (s)':>9} {'ms/it':>7} {'gap':>9}")
    for n_iter in (int(v) for v in args.iters.split(",")):
        for restart in (False, True):
            t0 = time.perf_counter()
            res = uc.nnls(X, H, solver="fista", backend="torch", device=args.device,
                          tol=0.0, max_iter=n_iter, restart=restart,
                          chunk_size=X.shape[0])
            dt = time.perf_counter() - t0
            gap = (objective(res.W) - F_star) / F_star
            print(f"{n_iter:>10} {restart!s:>8} {dt:>9.2f} {dt / n_iter * 1e3:>7.2f} "
                  f"{gap:>9.2e}")


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")  # the iteration-cap warning is expected here
    main()
