"""Extrapolated HALS against plain HALS: iterations, time and error to the default stop.

For each data set (the benchmark stack of ``_data.py``, the bundled sample, Samson and
Jasper Ridge when ``../shared/data`` has them) and each start (nndsvda, random), one
``core.nmf`` run with every default (HALS, the noise-scaled stop) with the
extrapolation of ``core.solvers.extrapolation`` and one without
(``fit_hals_numpy(extrapolate=False)``), then the same two run to ``--long``
iterations (``tol=0``) for the error both approach.  Then, over ``--starts`` random
starts on each data set, how many end more than 1 % above the best of them (a saddle
where the stall rule stops), plain and extrapolated.

Usage::

    python benchmarks/extrapolation.py [--pixels 262144] [--long 300] [--starts 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _data import make_stack
from _scenes import load_scene

from napari_unmix.core import nmf
from napari_unmix.core.data import stack_to_matrix
from napari_unmix.core.solvers import hals
from napari_unmix.core.synthetic import make_crs_sample


def datasets(pixels):
    out = {"benchmark stack, k=5": (make_stack(n_pixels=pixels).X, 5)}
    sample = make_crs_sample()
    out["bundled sample, k=3"] = (stack_to_matrix(sample.stack, 0)[0], 3)
    small = make_crs_sample(shape=(48, 48))
    out["bundled sample 48x48, k=4"] = (stack_to_matrix(small.stack, 0)[0], 4)
    for name, k in (("samson", 3), ("jasper", 4)):
        try:
            cube = load_scene(name)[0]
        except FileNotFoundError as exc:
            print(f"skipped {name}: {exc}")
            continue
        out[f"{name}, k={k}"] = (cube.reshape(-1, cube.shape[-1]).copy(), k)
    return out


def fit(X, k, extrapolate, **kw):
    defaults = hals.fit_hals_numpy.__kwdefaults__
    before = defaults["extrapolate"]
    defaults["extrapolate"] = extrapolate
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            res = nmf(X, k, solver="hals", backend="numpy", **kw)
            return res, time.perf_counter() - t0
    finally:
        defaults["extrapolate"] = before


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pixels", type=int, default=512 * 512, help="pixels of the stack")
    p.add_argument("--long", type=int, default=300, help="iterations of the long runs")
    p.add_argument("--starts", type=int, default=20, help="random starts per data set")
    args = p.parse_args(argv)
    data = datasets(args.pixels)
    print(f"{'data':28s} {'start':8s} {'':6s} {'iter':>5s} {'time s':>7s} "
          f"{'rel. error':>10s} {'stopped by':>12s} {f'error at {args.long}':>13s}")
    for name, (X, k) in data.items():
        for init in ("nndsvda", "random"):
            for extrapolate in (False, True):
                res, t = fit(X, k, extrapolate, init=init, random_state=0)
                long, _ = fit(X, k, extrapolate, init=init, random_state=0, tol=0.0,
                              max_iter=args.long)
                s = res.summary
                print(f"{name:28s} {init:8s} {'extr.' if extrapolate else 'plain':6s} "
                      f"{s.n_iter:5d} {t:7.2f} {s.relative_error:10.5f} {s.stopped_by:>12s} "
                      f"{long.summary.relative_error:13.5f}")
    print(f"\nrandom starts ending > 1 % above the best of {args.starts} (saddles):")
    for name, (X, k) in data.items():
        if X.shape[0] > 100_000:
            continue   # the benchmark stack: too slow for many starts
        line = f"  {name:28s}"
        for extrapolate in (False, True):
            errors = np.array([fit(X, k, extrapolate, init="random", random_state=s)[0]
                               .summary.relative_error for s in range(args.starts)])
            worse = int(np.sum(errors > 1.01 * errors.min()))
            line += f"  {'extrapolated' if extrapolate else 'plain'}: {worse:2d}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
