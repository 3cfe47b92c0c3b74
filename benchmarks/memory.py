"""Peak memory of every mode above the data, in one process: what each run allocates.

On the benchmark stack of ``_data.py`` (``--pixels`` x 64 channels, float32, k = 5),
each of the core calls below runs once after a small warm-up run (its imports and
caches outside the count), with ``tracemalloc`` tracing numpy's allocations (numpy
reports its buffers to it) from the call to its return:

``pca``          ``pca(X, 5)``
``nmf``          ``nmf(X, 5)``: every default (HALS, the noise-scaled stop)
``seeded nmf``   ``nmf(X, 5, W0=..., H0=..., anchor=1)``: seeds the true maps and the
                 true spectra blurred by 1.5 channels
``nnls``         ``nnls(X, H)``: the exact active set
``x 16``         the default NNMF and PCA of ``16 X`` (a data scale that is not 1:
                 HALS and PCA divide by it without a copy of ``X``)

The peak is printed as a multiple of ``X.nbytes``, the results' own arrays included
(``W`` alone is ``k / 64`` = 0.08 X here).  ``tracemalloc`` sees what numpy and
Python allocate, not BLAS's internal buffers; ``peers.py`` measures the process's
resident peak instead (``VmHWM``), the interpreter included.

Usage::

    python benchmarks/memory.py [--pixels 262144]
"""

from __future__ import annotations

import argparse
import tracemalloc
import warnings

import numpy as np
from _data import make_stack
from scipy.ndimage import gaussian_filter1d

from napari_unmix.core import nmf, nnls, pca


def peak_of(fn) -> int:
    """Bytes ``fn()`` allocated at its peak (tracemalloc), its result freed after."""
    tracemalloc.start()
    try:
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del out
    return peak


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pixels", type=int, default=512 * 512)
    args = p.parse_args(argv)
    s = make_stack(n_pixels=args.pixels)
    X = s.X
    H = s.H_true.astype(np.float32)
    H0 = gaussian_filter1d(s.H_true, 1.5, axis=1).astype(np.float32)
    W0 = (s.W_true / s.W_true.max(axis=0)).astype(np.float32)
    X16 = X * np.float32(16)
    runs = {
        "pca": lambda: pca(X, 5),
        "nmf": lambda: nmf(X, 5, random_state=0),
        "seeded nmf": lambda: nmf(X, 5, W0=W0, H0=H0, anchor=1.0),
        "nnls": lambda: nnls(X, H),
        "pca, x 16": lambda: pca(X16, 5),
        "nmf, x 16": lambda: nmf(X16, 5, random_state=0),
    }
    small = X[:2000]
    print(f"X {X.shape} {X.dtype} = {X.nbytes / 2**20:.0f} MB; peak allocations above X "
          "(tracemalloc)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pca(small, 5), nmf(small, 5, random_state=0, max_iter=5), nnls(small, H)
        for name, fn in runs.items():
            peak = peak_of(fn)
            print(f"  {name:12s} {peak / 2**20:8.1f} MB = {peak / X.nbytes:.2f} X")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
