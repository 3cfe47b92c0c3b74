"""Abundance models: the cost and accuracy of exact FCLS, and what it gives on real scenes.

Three sections (all by default; ``--only`` picks some):

* ``speed``: ``core.nnls`` with ``abundance="sum-to-one"`` and ``"sum-le-one"``
  against plain exact NNLS (``"free"``) on the benchmark stack (``_data.make_stack``:
  ``--side`` x ``--side`` pixels, 64 channels, k = 5, float32), median of
  ``--repeats`` runs each, and the median of the paired ratios (each constrained run
  against the plain run timed just before it, so that a change of the machine's
  load during the benchmark does not skew the ratio);
* ``accuracy``: the worst objective gap against the exact optimum ``f_ref`` found
  by enumerating every passive set (the KKT system of the equality-constrained
  least squares on each, the best feasible one), over ``--pixels`` random pixels
  per model: k = 2..4, well and ill conditioned bases (random, overlapping
  Gaussian bands, spectra 1e-3 apart, scales over 1e-3..1e3, duplicate and
  all-zero spectra, more spectra than channels), exact convex (or sub-convex)
  mixtures and noisy data; relative, ``(f - f_ref) / f_ref``, where the optimum
  leaves a residual (``f_ref > 1e-12 ||x||^2``), and ``(f - f_ref) / ||x||^2``
  where the spectra fit the pixel exactly (``f_ref`` at rounding level, where a
  relative gap means nothing);
* ``scenes``: Samson and Jasper Ridge (``../shared/data``, or ``--data``) with the
  published endmembers: abundance RMSE against the ground truth for fixed-H NNLS
  with free, sum-to-one and sum-at-most-one abundances, and for seeded NNMF (trust
  1, the default) from the same endmembers.  A sum constraint reads a spectrum's
  scale as that of a whole pixel, so the endmembers are also tried on the data's
  scale (one common factor, the mean row sum of the plain NNLS abundances, from
  the data alone); the plain NNLS rows divided by their sums (fractions under a
  free per-pixel brightness) are printed for context.

Usage::

    python benchmarks/abundance.py                      # everything, 512 x 512
    python benchmarks/abundance.py --only speed --side 256
    python benchmarks/abundance.py --only scenes --data /path/to/shared/data
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from pathlib import Path

import numpy as np
from _data import make_stack  # benchmarks/ is on sys.path when run as a script
from _scenes import DATA, load_scene

from napari_unmix.core import nmf, nnls
from napari_unmix.core.solvers.simplex import fit_simplex

MODELS = ("sum-to-one", "sum-le-one")


# --------------------------------------------------------------------------- speed


def speed(side: int, repeats: int) -> None:
    s = make_stack(side * side, 64, 5)
    X, H = s.X, s.H_true.astype(np.float32)
    nnls(X[:1000], H)                                   # warm up imports and caches
    print(f"speed: {side} x {side} pixels x 64 channels, k = 5, float32, "
          f"{repeats} runs each")
    times = {m: [] for m in ("free", *MODELS)}
    ratios = {m: [] for m in MODELS}
    info = {}
    for _ in range(repeats):
        for model in MODELS:
            t0 = time.perf_counter()
            nnls(X, H)
            t_free = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = nnls(X, H, abundance=model)
            t = time.perf_counter() - t0
            times["free"].append(t_free)
            times[model].append(t)
            ratios[model].append(t / t_free)
            info[model] = res
    print(f"  free (plain exact NNLS)   {np.median(times['free']):7.3f} s")
    for model in MODELS:
        res = info[model]
        extra = (f", constraint active on {res.summary.n_constraint_active} pixels"
                 if model == "sum-le-one" else "")
        print(f"  {model:25s} {np.median(times[model]):7.3f} s   ratio to free "
              f"{np.median(ratios[model]):.2f} (NNLS solves per chunk "
              f"{res.summary.chunk_iters}{extra})")


# --------------------------------------------------------------------------- accuracy


def fcls_reference(x, H):
    """The exact FCLS objective by enumerating the passive sets (KKT on each)."""
    k = H.shape[0]
    G, b = H @ H.T, H @ x
    best = np.inf
    for r in range(1, k + 1):
        for F in map(list, itertools.combinations(range(k), r)):
            A = np.zeros((r + 1, r + 1))
            A[:r, :r] = G[np.ix_(F, F)]
            A[:r, r] = A[r, :r] = 1.0
            wF = np.linalg.lstsq(A, np.r_[b[F], 1.0], rcond=None)[0][:r]
            if (wF < -1e-12).any() or abs(wF.sum() - 1.0) > 1e-9:
                continue
            w = np.zeros(k)
            w[F] = np.maximum(wF, 0.0)
            w /= w.sum()
            best = min(best, float(np.sum((x - w @ H) ** 2)))
    return best


def le_reference(x, H):
    from scipy.optimize import nnls as scipy_nnls

    w = scipy_nnls(H.T, x)[0]
    return float(np.sum((x - w @ H) ** 2)) if w.sum() <= 1.0 else fcls_reference(x, H)


def basis(kind, rng, k, m):
    axis = np.linspace(0.0, 1.0, m)
    H = rng.random((k, m))
    if kind == "overlap":
        H = np.exp(-0.5 * ((axis - np.linspace(0.35, 0.65, k)[:, None]) / 0.15) ** 2)
    elif kind == "collinear-1e-3":
        H[1] = H[0] + 1e-3 * rng.random(m)
    elif kind == "scaled":
        H *= 10.0 ** rng.uniform(-3, 3, (k, 1))
    elif kind == "duplicate":
        H[-1] = H[0]
    elif kind == "zero-spectrum":
        H[-1] = 0.0
    elif kind == "k>m":
        H = rng.random((k, k - 1))
    return H


def accuracy(n_pixels: int) -> None:
    kinds = ("random", "overlap", "collinear-1e-3", "scaled", "duplicate", "zero-spectrum",
             "k>m")
    rng = np.random.default_rng(0)
    per = 24                                            # pixels per problem
    worst = {(m, e): 0.0 for m in MODELS for e in ("residual", "exact fit")}
    counts = dict.fromkeys(worst, 0)
    worst_w = dict.fromkeys(MODELS, 0.0)
    count = 0
    t0 = time.perf_counter()
    for trial in itertools.count():
        if count >= n_pixels:
            break
        kind, exact = kinds[trial % len(kinds)], trial % 2 == 0
        k = 2 + trial % 3
        H = basis(kind, rng, k, int(rng.integers(k + 1, 24)))
        W = rng.dirichlet(np.full(k, 0.5), per)
        W[rng.random(per) < 0.3] *= rng.uniform(0.2, 1.0)
        X = W @ H
        if not exact:
            X = X * rng.uniform(0.5, 2.0, (per, 1)) + 0.05 * X.std() * rng.standard_normal(
                X.shape)
        for model, ref in (("sum-to-one", fcls_reference), ("sum-le-one", le_reference)):
            fit = fit_simplex(X, H, abundance=model)
            worst_w[model] = max(worst_w[model], float(np.abs(fit.W.sum(axis=1) - 1)[
                fit.active].max(initial=0.0)))
            for x, w in zip(X, fit.W, strict=True):
                f_ref = ref(x, H)
                excess = np.sum((x - w @ H) ** 2) - f_ref
                fits = f_ref <= 1e-12 * (x @ x)
                key = (model, "exact fit" if fits else "residual")
                worst[key] = max(worst[key], float(excess / max(x @ x if fits else f_ref,
                                                                1e-300)))
                counts[key] += 1
        count += per
    print(f"accuracy: {count} pixels per model against the passive-set enumeration "
          f"({time.perf_counter() - t0:.0f} s)")
    for (model, data), gap in worst.items():
        what = "(f - f_ref) / ||x||^2" if data == "exact fit" else "(f - f_ref) / f_ref"
        print(f"  {model:11s} {counts[model, data]:6d} pixels with {data + ':':10s} worst "
              f"{what} = {gap:.2e}")
    for model, dev in worst_w.items():
        print(f"  {model:11s} worst |sum(w) - 1| where the constraint is active: {dev:.1e}")


# --------------------------------------------------------------------------- scenes


def rmse(W, A):
    return float(np.sqrt(np.mean((np.asarray(W, np.float64) - A) ** 2)))


def scenes(data: Path) -> None:
    print("scenes: abundance RMSE against the ground truth (published endmembers)")
    for scene in ("samson", "jasper"):
        try:
            cube, M, A, _ = load_scene(scene, data)
        except FileNotFoundError as exc:
            print(f"  {scene}: skipped ({exc})")
            continue
        X = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
        plain = nnls(X, M)
        alpha = float(plain.W.sum(axis=1).mean())
        print(f"  {scene}: plain NNLS {rmse(plain.W, A):.4f} (rows divided by their sums "
              f"{rmse(plain.W / plain.W.sum(axis=1, keepdims=True), A):.4f}); the mean row "
              f"sum, the endmembers' scale on the data: {alpha:.3f}")
        for label, H in (("as published", M), (f"x {alpha:.3f}", alpha * M)):
            fixed = [f"{m} {rmse(nnls(X, H, abundance=m).W, A):.4f}"
                     for m in ("free", *MODELS)]
            seeded = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # convergence, drift: not the point here
                for model in ("free", *MODELS):
                    res = nmf(X, M.shape[0], H0=H, anchor=1.0, abundance=model,
                              random_state=0)
                    seeded.append(f"{model} {rmse(res.W, A):.4f}")
            print(f"    endmembers {label}: fixed-H NNLS " + ", ".join(fixed)
                  + "; seeded NNMF " + ", ".join(seeded))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=("speed", "accuracy", "scenes"),
                   default=("speed", "accuracy", "scenes"))
    p.add_argument("--side", type=int, default=512, help="image side of the speed stack")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--pixels", type=int, default=3000, help="pixels per model (accuracy)")
    p.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    args = p.parse_args(argv)
    if "speed" in args.only:
        speed(args.side, args.repeats)
    if "accuracy" in args.only:
        accuracy(args.pixels)
    if "scenes" in args.only:
        scenes(args.data)


if __name__ == "__main__":
    main()
