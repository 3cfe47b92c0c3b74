"""``napari-unmix demo``: every mode on the bundled synthetic sample, scored against its truth.

:func:`run_demo` builds the synthetic CRS sample (:mod:`napari_unmix.core.synthetic`),
runs PCA once, random NNMF and fixed-H NNLS with every available registered
implementation, and seeded NNMF the way a user seeds it (ROIs and a locked flat
background), writes the outputs of each run like ``napari-unmix run`` does, and
prints a table of how well each run recovered the known spectra and maps.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from .cli import (
    PROG,
    CLIError,
    _note,
    _prepare_out,
    _Progress,
    _progress_enabled,
    _run_quietly,
    _say,
    _write_outputs,
)

__all__ = ["run_demo"]


def _demo_runs():
    """(label, dir name, mode, solver, backend, is_auto) for every run of the demo.

    PCA once; random NNMF and fixed-H NNLS with every available registered
    implementation (so that they can be compared); seeded NNMF from ROI seeds and a
    locked flat background (see :func:`_demo_roi_config`), with the automatic choice
    only.
    """
    from .core import MODES, NMF_SOLVERS, NNLS_SOLVERS
    from .core.solvers import pick_nmf_solver, pick_nnls_solver

    runs = []
    for mode in MODES:
        if mode == "pca":
            runs.append(("pca", "pca", "pca", None, None, False))
        elif mode in ("nmf", "nnls"):
            table = NNLS_SOLVERS if mode == "nnls" else NMF_SOLVERS
            auto = pick_nnls_solver() if mode == "nnls" else pick_nmf_solver()
            for (solver, backend), s in table.items():
                if not s.available():
                    continue
                is_auto = (solver, backend) == (auto.algorithm, auto.backend)
                runs.append((f"{mode} {solver}/{backend}", f"{mode}-{solver}-{backend}",
                             mode, solver, backend, is_auto))
        elif mode == "seeded-nmf":
            auto = pick_nmf_solver(seeded=True)
            runs.append((f"{mode} {auto.algorithm}/{auto.backend}, ROI seeds + flat bg",
                         f"{mode}-{auto.algorithm}-{auto.backend}", mode, auto.algorithm,
                         auto.backend, True))
        else:
            runs.append((mode, mode, mode, None, None, False))
    return runs


def _warm_up():
    """Import the libraries the solvers use lazily, so that imports are not timed."""
    import scipy.optimize  # noqa: F401
    import sklearn.decomposition  # noqa: F401

    from .core.device import get_torch

    get_torch()


def _fit(mode, X, k, *, H=None, args=None, callback=None):
    """Demo: run one mode directly on the matrix with an explicit implementation."""
    from .core import nmf, nnls, pca

    opts = {}
    for name in ("solver", "backend", "device", "tol", "max_iter", "random_state", "negative"):
        value = getattr(args, name, None) if args is not None else None
        if value is not None:
            opts[name] = value
    if mode == "pca":
        return pca(X, k, callback=callback)
    if mode == "nmf":
        return nmf(X, k, callback=callback, **opts)
    if mode == "nnls":
        opts.pop("random_state", None)
        return nnls(X, H, callback=callback, **opts)
    raise CLIError(f"the demo does not run --mode {mode} directly.")


def _demo_roi_config(sample, *, max_iter, random_state):
    """Seeded NNMF as a user would seed it: painted ROIs and a locked flat background.

    Lipid, protein and water are seeded with the mean spectrum of an ROI of 25
    pixels where each dominates (what a user paints over a droplet, a nucleus and
    the medium; the ROIs are placed from the sample's ground truth only to imitate
    that).  The non-resonant background is spectrally flat, which CRS users know:
    it is seeded with a constant spectrum (:class:`~.core.components.Flat`)
    and locked.  ROI means are mixtures (a
    droplet sits on cytoplasm, everything sits on water and background), and this
    sample has no pixel with lipid alone, so no NNMF can take the rest of the
    mixing out of the lipid and protein spectra.  The locked flat row takes the
    offset the ROI means carry (``Flat(absorb_offsets=True)``).
    """
    from .core.analysis import AnalysisConfig
    from .core.components import ComponentSpec, Flat, RoiMask

    share = sample.W / np.maximum(sample.W.sum(axis=1, keepdims=True), 1e-12)
    comps = []
    for j, name in enumerate(sample.component_names):
        if name == "background":
            comps.append(ComponentSpec(name, color=sample.colors[j], h_source=Flat(),
                                       background=True, locked=True))
            continue
        order = np.argsort(share[:, j])[::-1][:25]  # the 25 purest pixels of component j
        mask = np.zeros(share.shape[0], dtype=bool)
        mask[order] = True
        comps.append(ComponentSpec(name, color=sample.colors[j],
                                   h_source=RoiMask(mask.reshape(sample.maps.shape[1:]))))
    return AnalysisConfig(mode="seeded-nmf", components=comps, max_iter=max_iter,
                          random_state=random_state, spectral_unit=sample.spectral_unit)


def _fmt(v, spec, na="n/a"):
    return na if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def run_demo(args) -> int:
    from .core.colors import DEFAULT_COLORS
    from .core.metrics import score_against_truth
    from .core.synthetic import make_crs_sample
    from .io import write_maps_tiff, write_spectra_csv, write_stack_tiff

    quiet = args.quiet
    out = Path(args.out)
    shape = (args.size, args.size)
    t_start = time.perf_counter()
    sample = make_crs_sample(shape=shape, n_channels=args.channels, noise=args.noise,
                             random_state=args.random_state)
    k = sample.n_components
    lo, hi = sample.spectral_axis[0], sample.spectral_axis[-1]
    _say(f"{PROG} demo: synthetic CRS sample, {shape[0]} x {shape[1]} pixels, {args.channels} "
         f"channels ({lo:g}-{hi:g} {sample.spectral_unit}), {k} components "
         f"({', '.join(sample.component_names)}), noise {args.noise:g}", quiet=quiet)
    _prepare_out(out)
    write_stack_tiff(out / "sample.tif", sample.stack, axes="CYX",
                     spectral_values=sample.spectral_axis, spectral_unit=sample.spectral_unit)
    truth = out / "ground_truth"
    write_maps_tiff(truth / "maps.tif", sample.maps, sample.component_names)
    write_spectra_csv(truth / "spectra.csv", sample.H, sample.spectral_axis,
                      sample.component_names, sample.spectral_unit)

    from .core import stack_to_matrix

    X, spatial_shape = stack_to_matrix(sample.stack, 0)
    runs = _demo_runs()  # also imports torch, when installed, outside the timings
    _warm_up()
    rows = []
    for label, dirname, mode, solver, backend, is_auto in runs:
        shown = label + (" (auto)" if is_auto else "")
        opts = argparse.Namespace(solver=solver, backend=backend, device=None, tol=None,
                                  max_iter=args.max_iter if mode != "pca" else None,
                                  random_state=args.random_state if "nmf" in mode else None,
                                  negative=None)
        H = sample.H if mode == "nnls" else None
        progress = _Progress(shown, _progress_enabled(args))
        t0 = time.perf_counter()
        try:
            if mode == "seeded-nmf":
                from .core.analysis import run_analysis

                cfg = _demo_roi_config(sample, max_iter=args.max_iter,
                                       random_state=args.random_state)
                res, warned = _run_quietly(run_analysis, sample.stack, cfg, spectral_axis=0,
                                           spectral_values=sample.spectral_axis,
                                           callback=progress)
            else:
                res, warned = _run_quietly(_fit, mode, X, k, H=H, args=opts,
                                           callback=progress)
        except CLIError as exc:
            _note(f"{label} skipped: {exc}", quiet)
            continue
        finally:
            progress.close()
        elapsed = time.perf_counter() - t0
        scores = None
        colors = list(DEFAULT_COLORS[:k]) if k <= len(DEFAULT_COLORS) else None
        names = None
        if mode != "pca":
            scores = score_against_truth(sample.W, sample.H, res.W, res.H,
                                         names=sample.component_names)
            names = [f"C{i + 1}" for i in range(res.n_components)]
            for p in scores["pairs"]:
                e = p["est_index"]
                names[e] = (p["true"] if mode == "nnls"
                            else f"C{e + 1}~{p['true']}")
                if colors:
                    # the flat background tints every pixel: leave it out of the picture
                    colors[e] = (None if p["true"] == "background"
                                 else sample.colors[p["true_index"]])
        res = dataclasses.replace(res, component_names=names or [],
                                  spectral_axis=sample.spectral_axis,
                                  spectral_unit=sample.spectral_unit)
        extra = {"demo": {"sample": {"shape": list(shape), "n_channels": args.channels,
                                     "noise": args.noise, "random_state": args.random_state,
                                     "noise_floor": sample.noise_floor},
                          "ground_truth_scores": scores, "auto_choice": is_auto,
                          "warnings": warned, "wall_time_s": elapsed}}
        _write_outputs(out / dirname, res, spatial_shape, colors=colors, extra=extra)
        rows.append({"run": shown, "dir": dirname, "where": f"{res.backend}/{res.device}",
                     "time": elapsed, "n_iter": res.n_iter if mode != "pca" else None,
                     "exact": bool(res.summary.get("exact")),
                     "capped": bool(res.summary.get("hit_max_iter")),
                     "rel": res.summary.get("relative_error"),
                     "sa": None if scores is None else scores["mean_spectral_angle"],
                     "rmse": None if scores is None else scores["abundance_rmse"],
                     "warnings": warned})
    total = time.perf_counter() - t_start
    _print_table(rows, sample, out, total, quiet)
    return 0


def _print_table(rows, sample, out, total, quiet):
    if quiet:
        return
    head = ("run", "backend/device", "time [s]", "iter", "rel. error", "mean SA [rad]",
            "abund. RMSE")
    body = []
    for r in rows:
        if r["n_iter"] is None:
            it = "-"
        elif r["exact"]:
            it = "exact"
        else:
            it = f"{r['n_iter']}" + (" (cap)" if r["capped"] else "")
        body.append((r["run"], r["where"], f"{r['time']:.2f}", it, _fmt(r["rel"], ".4f"),
                     _fmt(r["sa"], ".4f"), _fmt(r["rmse"], ".4f")))
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]
    left = {0, 1}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    print()
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for b in body:
        print(line(b))
    print()
    amax = float(sample.maps.max())
    print(f"noise floor ||noise||_F / ||X||_F = {sample.noise_floor:.4f}: the relative error "
          "of the true W and H.")
    if any(r["exact"] for r in rows):
        print("  iter: 'exact' = an active-set NNLS solve, which has no iteration count to "
              "compare.")
    print("  rel. error = ||X - WH||_F / ||X||_F; far below the floor means fitting noise "
          "(PCA keeps signed components, so it is not bound by it).")
    print("  mean SA = mean spectral angle between each true spectrum and its matched "
          "estimate (0 = same shape).")
    print("  abund. RMSE = per-component RMSE of the maps, each estimated map scaled to its "
          f"true map by least squares (true abundances reach {amax:.2f}); n/a for PCA, "
          "whose signed components are not abundances.")
    if any(r["run"].startswith("seeded-nmf") for r in rows):
        print("  seeded-nmf: lipid, protein and water seeded from 25-pixel ROIs (mixtures, as "
              "painted ROIs are); the background seeded flat and locked (its angle is 0 by "
              "construction), taking the offsets of the other spectra.")
    if any(r["capped"] for r in rows):
        print("  (cap) = stopped at --max-iter before meeting tol: raise --max-iter for a "
              "converged fit.")
    print(f"\noutputs in {out}/: sample.tif (the stack), ground_truth/ (true maps and spectra), "
          "and per run " + ", ".join(f"{r['dir']}/" for r in rows))
    print("  each run folder holds maps.tif, spectra.csv, composite.png (the component "
          "matched to the flat background left out), result.json, result.npz")
    print(f"try: {PROG} run {out / 'sample.tif'} --mode nnls --spectra "
          f"{out / 'ground_truth' / 'spectra.csv'} --out {out / 'my-nnls'}")
    print(f"total time {total:.1f} s")
