"""NNMF speed benchmark: HALS (numpy, torch) against scikit-learn's cd and mu.

The data are synthetic and deterministic: ``--side`` x ``--side`` pixels, 64
channels, 5 strongly overlapping Gaussian resonances, sparse abundances (each
pixel holds a component with probability 0.3, exponential amplitudes) and
Gaussian noise of 1 % of the signal's RMS (negative values clipped to 0).

Every solver starts from the same nndsvda init (``core.init``, as ``core.nmf``
builds it; its time is not counted).  scikit-learn ``cd`` and ``mu`` run
``--peer-iter`` iterations (``tol=0``, so all of them).  The target is the
lowest relative error ``||X - WH||_F / ||X||_F`` the peers reach; each HALS
variant runs with ``tol=0`` and its error sampled every ``--every`` iterations,
and the time to its first sample at or below the target is reported (the time of
the error samples included).  Times are printed in seconds and as ratios to one
``X @ H.T`` timed in the same run (median of several), so runs on different or
busy machines can be compared; the process CPU time is printed too (on a shared
machine it is steadier than the wall time when everything runs on one thread).
The noise floor ``||X - X_clean||_F / ||X||_F`` is printed for reference: a
5-component fit can go slightly below it by fitting part of the noise.

Usage::

    python benchmarks/nmf_speed.py                  # full size, 512 x 512 x 64
    python benchmarks/nmf_speed.py --every 5        # finer time-to-target
    python benchmarks/nmf_speed.py --side 128       # quick look
    python benchmarks/nmf_speed.py --threads 1      # BLAS, torch, HALS on 1 thread
    python benchmarks/nmf_speed.py --skip-peers --target 0.0094115 --w-sweeps 6
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _data import make_stack  # benchmarks/ is on sys.path when run as a script
from _timing import median_time

from napari_unmix.core.init import initialize_factors
from napari_unmix.core.solvers._common import residual_norm
from napari_unmix.core.solvers.hals import fit_hals_numpy, fit_hals_torch


def make_data(side: int = 512, n_channels: int = 64, n_components: int = 5,
              noise: float = 0.01, seed: int = 0):
    """Deterministic test stack as ``(X, X_clean)``, float32 ``(side*side, n_channels)``."""
    s = make_stack(side * side, n_channels, n_components, noise, seed)
    return s.X, s.X_clean




def _run_sklearn(X, W0, H0, solver, n_iter):
    from sklearn.decomposition import non_negative_factorization
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0, c0 = time.perf_counter(), time.process_time()
        W, H, _ = non_negative_factorization(
            X, W=W0.copy(), H=H0.copy(), n_components=H0.shape[0], init="custom",
            solver=solver, beta_loss="frobenius", tol=0.0, max_iter=n_iter,
            alpha_W=0.0, alpha_H=0.0)
        return time.perf_counter() - t0, time.process_time() - c0, W, H


def _time_to_target(fn, X, W0, H0, target, x_norm, max_iter, every, **kw):
    """Run ``fn`` with tol=0; time and iteration of its first sample <= target."""
    samples = []
    t0, c0 = time.perf_counter(), time.process_time()

    def report(it, _max_iter, err):
        samples.append((it, time.perf_counter() - t0, time.process_time() - c0, err / x_norm))

    fit = fn(X, W0, H0, max_iter=max_iter, tol=0.0, report=report, track_error_every=every,
             **kw)
    total = time.perf_counter() - t0
    hit = next((s for s in samples if s[3] <= target), None)
    return hit, total, samples[-1][3], fit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=512, help="image side (pixels)")
    parser.add_argument("--peer-iter", type=int, default=200)
    parser.add_argument("--max-iter", type=int, default=200, help="cap for the HALS runs")
    parser.add_argument("--every", type=int, default=10,
                        help="HALS error sampling step (the solvers' default)")
    parser.add_argument("--threads", type=int, default=None,
                        help="limit BLAS, torch and numpy-HALS threads (default: leave as is)")
    parser.add_argument("--skip-peers", action="store_true",
                        help="use --target instead of running scikit-learn")
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--devices", default="cpu,cuda",
                        help="torch devices to try (cuda skipped when absent)")
    parser.add_argument("--no-torch", action="store_true", help="numpy HALS only")
    parser.add_argument("--n-threads", type=int, default=None,
                        help="threads of the numpy HALS (default: the solver's)")
    for name in ("w-sweeps", "h-sweeps", "block-bytes"):
        parser.add_argument(f"--{name}", type=int, default=None,
                            help="HALS tuning knob (default: the solver's)")
    parser.add_argument("--omega", type=float, default=None,
                        help="HALS over-relaxation (default: the solver's)")
    args = parser.parse_args(argv)
    knobs = {key: value for key, value in (("w_sweeps", args.w_sweeps),
                                           ("h_sweeps", args.h_sweeps),
                                           ("block_bytes", args.block_bytes),
                                           ("omega", args.omega)) if value is not None}

    limiter = None
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(args.threads)
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass

    k = 5
    X, X_clean = make_data(args.side, n_components=k)
    x_norm = float(np.linalg.norm(X.astype(np.float64)))
    noise_floor = float(np.linalg.norm(X - X_clean) / x_norm)
    t0 = time.perf_counter()
    W0, H0 = initialize_factors(X, k, init="nndsvda", random_state=0)
    t_init = time.perf_counter() - t0
    base = median_time(lambda: X @ H0.T, 7)
    print(f"X: {X.shape} {X.dtype}, k={k}; noise floor ||noise||/||X|| = {noise_floor:.6f}")
    print(f"unit: one X @ H.T = {base * 1e3:.2f} ms (median); nndsvda init {t_init:.2f} s "
          f"(not counted); init error {residual_norm(X, W0, H0) / x_norm:.4f}")

    peers = {}
    if not args.skip_peers:
        for solver in ("cd", "mu"):
            dt, cpu, W, H = _run_sklearn(X, W0, H0, solver, args.peer_iter)
            err = residual_norm(X, W, H) / x_norm
            peers[solver] = (dt, cpu, err)
            print(f"sklearn {solver:2s} {args.peer_iter} it: {dt:8.2f} s = {dt / base:7.1f} units "
                  f"(CPU {cpu:.2f} s), rel. error {err:.7f}")
    target = args.target if args.skip_peers else min(p[2] for p in peers.values())
    fastest = min((p[0] for p in peers.values()), default=None)
    fastest_cpu = min((p[1] for p in peers.values()), default=None)
    print(f"target rel. error {target:.7f}"
          + (f"; fastest peer {fastest:.2f} s = {fastest / base:.1f} units "
             f"(least CPU {fastest_cpu:.2f} s)" if fastest else ""))

    n_threads = args.n_threads if args.n_threads is not None else args.threads
    np_knobs = dict(knobs) if n_threads is None else dict(knobs, n_threads=n_threads)
    runs = [("hals numpy", fit_hals_numpy, np_knobs)]
    try:
        import torch

        for dev in args.devices.split(",") if not args.no_torch else []:
            if dev == "cuda" and not torch.cuda.is_available():
                continue
            kw = dict(knobs, device=dev)
            if dev != "cpu":
                kw.pop("block_bytes", None)
            runs.append((f"hals torch {dev}", fit_hals_torch, kw))
    except ImportError:
        pass
    for name, fn, kw in runs:
        if kw.get("device") == "cuda":  # warm-up: CUDA context, kernels, X upload path
            fn(X, W0, H0, max_iter=3, tol=0.0, **kw)
        hit, total, last, _ = _time_to_target(fn, X, W0, H0, target, x_norm, args.max_iter,
                                              args.every, **kw)
        if hit is None:
            print(f"{name:16s}: target not reached in {args.max_iter} it ({total:.2f} s); "
                  f"final rel. error {last:.7f}")
            continue
        it, t, cpu, e = hit
        line = (f"{name:16s}: target at it {it:4d} in {t:7.2f} s = {t / base:6.1f} units "
                f"(rel. error {e:.7f})")
        if fastest:
            line += (f"; {t / fastest:.3f} of the fastest peer's time "
                     f"(CPU {cpu:.2f} s: {cpu / fastest_cpu:.3f} of the least peer CPU)")
        print(line + f"; {args.max_iter} it: {total:.2f} s, rel. error {last:.7f}")
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
