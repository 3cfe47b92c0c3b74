"""Fixed-H NNLS speed and exactness: the active-set solver against one ``X @ H.T``.

The data are synthetic and deterministic: ``--side`` x ``--side`` pixels, 64
channels, float32, 5 strongly overlapping Gaussian resonances, sparse abundances
(each pixel holds a component with probability 0.3, exponential amplitudes) and
Gaussian noise of 1 % of the signal's RMS (negative values clipped to 0).

Reported, in this process:

* ``X @ H.T`` in float32 (the reference cost), median of several runs;
* the exact solver, numpy and torch-CPU (and torch-CUDA when a GPU is visible):
  median time of ``--repeats`` runs, and the median of the ratios of each run to
  ``X @ H.T`` timed just before it (pairing keeps the ratio meaningful when the
  machine's load changes during the benchmark); the target is a ratio <= 15 for
  numpy on 512 x 512 x 64, k = 5;
* the largest objective gap ``(f - f_scipy) / f_scipy`` against
  ``scipy.optimize.nnls`` on ``--check`` random pixels (exact: ~1e-10 or less).

``--cpu-time`` also reports process CPU time for the single-threaded numpy solver
against single-threaded ``X @ H.T`` (robust on a busy machine, where wall-clock
ratios swing with the load).

Usage::

    python benchmarks/nnls_speed.py                 # 512 x 512 x 64, k = 5
    python benchmarks/nnls_speed.py --side 128      # quick look
    python benchmarks/nnls_speed.py --k 3 7 10      # other numbers of spectra
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _data import make_stack  # benchmarks/ is on sys.path when run as a script
from _timing import median_time
from scipy.optimize import nnls as scipy_nnls

from napari_unmix.core.device import cuda_available, torch_available
from napari_unmix.core.solvers.active_set import (
    fit_nnls_active_set_numpy,
    fit_nnls_active_set_torch,
)


def make_data(side: int = 512, n_channels: int = 64, n_components: int = 5,
              noise: float = 0.01, seed: int = 0):
    """Deterministic ``(X, H)``: float32 ``(side*side, n_channels)`` and ``(k, n_channels)``."""
    s = make_stack(side * side, n_channels, n_components, noise, seed)
    return s.X, s.H_true.astype(np.float32)




def scipy_gap(X, H, W, n_check, seed=1):
    """Largest ``(f - f_scipy) / f_scipy`` over ``n_check`` random pixels."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(X.shape[0], size=min(n_check, X.shape[0]), replace=False)
    A = H.astype(np.float64).T
    worst = -np.inf
    for p in rows:
        x = X[p].astype(np.float64)
        f_ref = scipy_nnls(A, x)[1] ** 2
        r = x - W[p].astype(np.float64) @ H.astype(np.float64)
        worst = max(worst, (r @ r - f_ref) / max(f_ref, np.finfo(float).tiny))
    return float(worst)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--k", type=int, nargs="+", default=[5])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--check", type=int, default=2000,
                        help="pixels compared with scipy.optimize.nnls")
    parser.add_argument("--cpu-time", action="store_true",
                        help="also time single-threaded numpy vs X @ H.T in CPU time")
    args = parser.parse_args(argv)

    for k in args.k:
        X, H = make_data(args.side, args.channels, k)
        print(f"{args.side} x {args.side} pixels x {args.channels} channels, k = {k}, float32")
        bench(X, H, args)


def bench(X, H, args):
    HT = np.ascontiguousarray(H.T)
    runs = {"numpy": lambda: fit_nnls_active_set_numpy(X, H)}
    if torch_available():
        runs["torch-cpu"] = lambda: fit_nnls_active_set_torch(X, H, device="cpu")
        if cuda_available():
            import torch

            def cuda_run():
                fit_nnls_active_set_torch(X, H, device="cuda")
                torch.cuda.synchronize()
            runs["torch-cuda"] = cuda_run
    for fn in runs.values():                         # warm up (imports, tables, GPU)
        fn()
    t_ref = median_time(lambda: X @ HT, max(args.repeats, 9))
    print(f"  X @ H.T          {t_ref * 1e3:8.2f} ms")
    for name, fn in runs.items():
        # each run is paired with X @ H.T timed just before it (median of 5), so a
        # change of load during the benchmark moves both sides of the ratio
        times, ratios = [], []
        for _ in range(args.repeats):
            ref = median_time(lambda: X @ HT, 5)
            t = median_time(fn, 1)
            times.append(t)
            ratios.append(t / ref)
        print(f"  {name:<16s} {np.median(times) * 1e3:8.2f} ms   "
              f"{np.median(ratios):6.2f} x X @ H.T (median of {args.repeats} paired runs)")
    fit = fit_nnls_active_set_numpy(X, H)
    print(f"  exchanges: {fit.n_iter}, capped pixels: {int(fit.capped.sum())}, "
          f"max objective gap vs SciPy on {min(args.check, X.shape[0])} pixels: "
          f"{scipy_gap(X, H, fit.W, args.check):.2e}")
    if args.cpu_time:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            c_ref = median_time(lambda: X @ HT, max(args.repeats, 9), time.process_time)
            c = median_time(lambda: fit_nnls_active_set_numpy(X, H, n_threads=1),
                            args.repeats, time.process_time)
        print(f"  single thread, CPU time: X @ H.T {c_ref * 1e3:.2f} ms, numpy "
              f"{c * 1e3:.2f} ms ({c / c_ref:.2f} x)")

if __name__ == "__main__":
    main()
