"""Is the fit good? The targets of issue 15, measured.

Sections (``--sections``, default all):

* ``pipeline`` -- the unsupervised pipeline (suggest k, suggest seeds, seeded NNMF
  with the config's anchor) on Samson and Jasper Ridge: mean spectral angle (SAD,
  rad) to the published endmembers with the number of materials given and with k
  suggested, beside a plain successive projection and random NNMF.  Target <= 0.10.
* ``k`` -- the suggested number of components on the bundled sample (k = 4), the
  benchmark cube (``_data.make_stack``, k = 5; seeds 0-4 of its generator) and the
  real scenes.  Target: the true k on the sample and the cube.
* ``stability`` -- spreads over 10 random starts on an image with pure pixels
  (k = 4 and one more) and on the bundled sample.  Target: true < 0.05 rad,
  spurious > 0.2 rad.
* ``uncertainty`` -- coverage of 95 % intervals of fixed-H NNLS abundances on
  simulated Gaussian noise.  Target 93-97 %.
* ``residuals`` -- the bundled sample fitted with one spectrum left out: how much
  of that component's pixels the largest residual region covers, and how much of
  the region they are.  Target overlap >= 0.8.

Usage::

    python benchmarks/diagnostics.py [--data DIR] [--sections pipeline,k] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from _data import make_stack
from _diag_data import gaussian_nnls_scene, separable_scene
from _scenes import DATA, load_scene

from napari_unmix.core import (
    nmf,
    nnls,
    residuals,
    run_unsupervised,
    stability,
    suggest_n_components,
)
from napari_unmix.core.endmembers import spa
from napari_unmix.core.metrics import match_components, mean_spectral_angle
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.core.uncertainty import abundance_standard_errors

SECTIONS = ("pipeline", "k", "stability", "uncertainty", "residuals")


def quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def section_pipeline(data):
    rows = []
    for name in ("samson", "jasper"):
        try:
            cube, M, A, names = load_scene(name, data)
        except FileNotFoundError as exc:
            print(f"  {name}: skipped ({exc})")
            continue
        X = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
        k = len(names)
        row = {"scene": name, "k_true": k}
        row["spa_raw"] = mean_spectral_angle(M, X[spa(X, k)])
        row["random_nmf"] = mean_spectral_angle(M, quiet(nmf, X, k, random_state=0).H)
        t0 = time.perf_counter()
        auto = quiet(run_unsupervised, cube, spectral_axis=-1, n_components=k)
        row["pipeline_k_given"] = mean_spectral_angle(M, auto.result.H)
        row["seeds_k_given"] = mean_spectral_angle(M, auto.seeds.spectra)
        row["time_k_given_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        auto = quiet(run_unsupervised, cube, spectral_axis=-1, k_max=12, residual=False)
        row["k_suggested"] = auto.n_components
        row["pipeline_k_suggested"] = mean_spectral_angle(M, auto.result.H)
        row["time_k_suggested_s"] = time.perf_counter() - t0
        rows.append(row)
        print(f"  {name}: SPA on raw pixels {row['spa_raw']:.3f}, random NNMF "
              f"{row['random_nmf']:.3f}; pipeline, k = {k} given: seeds "
              f"{row['seeds_k_given']:.3f}, seeded NNMF {row['pipeline_k_given']:.3f} "
              f"({row['time_k_given_s']:.1f} s); k suggested = {row['k_suggested']}: "
              f"{row['pipeline_k_suggested']:.3f} ({row['time_k_suggested_s']:.1f} s)"
              f"  [target <= 0.10]")
    return rows


def _k_row(label, X, truth, axis=None, k_max=10):
    t0 = time.perf_counter()
    ks = suggest_n_components(X, spectral_axis=axis, k_max=k_max)
    row = {"data": label, "k_true": truth, "k": ks.k, "scree": ks.k_scree,
           "residual": ks.k_residual, "cv": ks.k_cv, "at_limit": ks.at_limit,
           "cv_z": ks.cv_z, "time_s": time.perf_counter() - t0}
    limit = f", at the limit: {', '.join(ks.at_limit)}" if ks.at_limit else ""
    margins = (f"; z of k = {truth - 1} / {truth + 1}: {ks.cv_z[truth - 2]:.1f} / "
               f"{ks.cv_z[truth]:.1f}" if truth < k_max else "")
    print(f"  {label}: true {truth}, suggested {ks.k} (scree {ks.k_scree}, residual "
          f"{ks.k_residual}, cross-validation {ks.k_cv}){limit}{margins} "
          f"({row['time_s']:.1f} s)")
    return row


def section_k(data):
    rows = [_k_row("bundled sample 128 x 128 x 64", make_crs_sample().stack, 4, axis=0,
                   k_max=8)]
    for seed in range(5):
        rows.append(_k_row(f"benchmark cube 512 x 512 x 64, seed {seed}",
                           make_stack(seed=seed).X, 5, k_max=8))
    for name in ("samson", "jasper"):
        try:
            cube, M, A, names = load_scene(name, data)
        except FileNotFoundError as exc:
            print(f"  {name}: skipped ({exc})")
            continue
        rows.append(_k_row(name, cube, len(names), axis=-1, k_max=12))
    return rows


def section_stability(data):
    rows = []
    sc = separable_scene()
    for k in (4, 5):
        rep = stability(sc.X, k, n_starts=10)
        m = match_components(sc.H, np.array(rep.spectra))
        true = set(m.est_index.tolist())
        row = {"data": "pure pixels, 4 components", "k": k,
               "true_spread": [rep.spread[j] for j in range(k) if j in true],
               "spurious_spread": [rep.spread[j] for j in range(k) if j not in true]}
        rows.append(row)
        print(f"  pure-pixel image, k = {k}: true components "
              f"{', '.join(f'{v:.3f}' for v in row['true_spread'])}; spurious "
              f"{', '.join(f'{v:.3f}' for v in row['spurious_spread']) or '-'} rad  "
              "[target: true < 0.05, spurious > 0.2]")
    s = make_crs_sample(shape=(64, 64))
    rep = stability(s.stack, 4, spectral_axis=0, n_starts=10)
    rows.append({"data": "bundled sample 64 x 64", "k": 4, "spread": rep.spread,
                 "relative_errors": rep.relative_errors})
    print(f"  bundled sample (no pure water / background), k = 4: spreads "
          f"{', '.join(f'{v:.3f}' for v in rep.spread)} rad, relative errors "
          f"{min(rep.relative_errors):.5f}-{max(rep.relative_errors):.5f}")
    return rows


def _coverage(sc, W, **kw):
    lo, hi = abundance_standard_errors(sc.X, sc.H, W, **kw).interval(0.95)
    return (sc.W >= lo) & (sc.W <= hi)


def section_uncertainty(data):
    rows = []
    for noise in ("pooled", "pixel", "channel"):
        rates = []
        for seed in range(5):
            sc = gaussian_nnls_scene(seed=seed)
            rates.append(float(_coverage(sc, nnls(sc.X, sc.H).W, noise=noise).mean()))
        rows.append({"noise": noise, "coverage": rates})
        print(f"  noise {noise}: 95 % intervals cover {min(rates):.4f}-{max(rates):.4f} "
              "(5 seeds x 12 000 intervals)  [target 0.93-0.97]")
    sc = gaussian_nnls_scene(zero_fraction=0.3, seed=0)
    c = _coverage(sc, nnls(sc.X, sc.H).W)
    zero = sc.W == 0
    rows.append({"noise": "pooled, 30 % true zeros", "positive": float(c[~zero].mean()),
                 "zero": float(c[zero].mean())})
    print(f"  with 30 % true zeros: positive truths {c[~zero].mean():.4f}, true zeros "
          f"{c[zero].mean():.4f}")
    return rows


def section_residuals(data):
    rows = []
    s = make_crs_sample()
    X = s.stack.reshape(64, -1).T
    for left, name in enumerate(s.component_names):
        keep = [j for j in range(4) if j != left]
        rep = residuals(quiet(nnls, X, s.H[keep]), s.stack, spectral_axis=0)
        w = s.W[:, left]
        truth = (w >= 0.1 * np.percentile(w, 99)).reshape(s.spatial_shape)
        region = rep.regions == 1
        both = (region & truth).sum()
        row = {"left_out": name, "covered": float(both / truth.sum()),
               "precision": float(both / max(region.sum(), 1)),
               "regions": rep.region_sizes,
               "unexplained_fraction": rep.unexplained_fraction}
        rows.append(row)
        print(f"  {name} left out: region 1 covers {row['covered']:.3f} of its pixels, "
              f"{row['precision']:.3f} of region 1 are its pixels (regions "
              f"{rep.region_sizes})  [target overlap >= 0.8]")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder of the real scenes")
    p.add_argument("--sections", default=",".join(SECTIONS))
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    out = {}
    for name in args.sections.split(","):
        if name not in SECTIONS:
            p.error(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")
        print(f"{name}:")
        t0 = time.perf_counter()
        out[name] = globals()[f"section_{name}"](args.data)
        print(f"  ({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
