"""Wall time of every mode through the public API on one 512 x 512 x 64 stack, k = 5.

The data are ``benchmarks/_data.py``'s (float32, five strongly overlapping
resonances, sparse abundances, 1 % noise).  Each mode runs with its defaults (the
"auto" solver choice), plus the explicit scikit-learn / SciPy backends for
comparison; the seeded run starts from the true spectra shifted by two channels.
Times are medians of ``--repeats`` runs; the first call of each is a warm-up.

    python benchmarks/mode_times.py [--pixels N] [--repeats R]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _data import make_stack

import napari_unmix.core as uc


def _time(fn, repeats):
    fn()  # warm-up: imports, caches
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pixels", type=int, default=512 * 512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scipy-pixels", type=int, default=16384,
                   help="pixels timed for SciPy's per-pixel loop (extrapolated)")
    args = p.parse_args(argv)
    s = make_stack(n_pixels=args.pixels)
    X, H = s.X, s.H_true.astype(np.float32)
    k = H.shape[0]
    H0 = np.roll(H, 2, axis=1)
    print(f"X {X.shape} {X.dtype}, k = {k}, noise floor {s.noise_floor:.4f}")
    runs = [
        ("pca", lambda: uc.pca(X, k)),
        ("nmf (auto)", lambda: uc.nmf(X, k, random_state=0)),
        ("nmf cd/sklearn", lambda: uc.nmf(X, k, solver="cd", backend="sklearn",
                                           random_state=0)),
        ("seeded-nmf (auto)", lambda: uc.nmf(X, k, H0=H0, random_state=0)),
        ("nnls (auto)", lambda: uc.nnls(X, H)),
        ("nnls fista/torch", lambda: uc.nnls(X, H, solver="fista", backend="torch")),
    ]
    print(f"{'mode':22s} {'backend':22s} {'time [s]':>9s} {'iter':>6s} {'rel. error':>11s}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cap hits are reported in the table
        for name, fn in runs:
            try:
                t, res = _time(fn, args.repeats)
            except ImportError as exc:
                print(f"{name:22s} not available: {exc}")
                continue
            solver = res.summary.get("solver") or res.summary.get("algorithm", "")
            where = f"{solver}/{res.backend}/{res.device}".strip("/")
            cap = " (cap)" if res.summary.get("hit_max_iter") else ""
            print(f"{name:22s} {where:22s} {t:9.2f} {res.n_iter:6d} "
                  f"{res.summary['relative_error']:11.5f}{cap}")
        sub = X[: args.scipy_pixels]
        t, _ = _time(lambda: uc.nnls(sub, H, solver="lawson-hanson", backend="scipy"), 1)
        scale = X.shape[0] / sub.shape[0]
        print(f"{'nnls lawson-hanson':22s} {'scipy/cpu':22s} {t * scale:9.2f} {'exact':>6s}"
              f"   (timed on {sub.shape[0]} pixels, x{scale:g})")


if __name__ == "__main__":
    main()
