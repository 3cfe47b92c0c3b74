"""``napari-unmix demo``: every mode on the bundled synthetic sample, scored against its truth.

:func:`cmd_demo` builds the synthetic CRS sample (:mod:`napari_unmix.core.synthetic`),
runs every registered mode -- once for a mode without a solver table (PCA), with
every available implementation of its table for an unseeded or fixed-spectra mode
(random NNMF, fixed-H NNLS), and the way a user seeds it (ROIs and a locked flat
background) for a mode whose seeds build maps (seeded NNMF) -- writes the outputs of
each run like ``napari-unmix run`` does, and prints a table of how well each run
recovered the known spectra and maps.  Every run is a run of an analysis config
(:func:`demo_config`, :func:`demo_roi_config`) written as its ``config.json``:
``napari-unmix run <out>/sample.tif --config <out>/<run>/config.json`` makes its maps
again.

The runs and how each is scored follow from the modes'
:class:`~napari_unmix.core.modes.ModeSpec` attributes, not from their names.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..core import (
    MODES,
    AnalysisConfig,
    ComponentSpec,
    Flat,
    RoiMask,
    Spectrum,
    run_analysis,
)
from ..core.colors import DEFAULT_COLORS
from ..core.metrics import score_against_truth
from ..core.synthetic import make_crs_sample
from ..io import check_output_folder, write_maps_tiff, write_spectra_csv, write_stack_tiff
from .console import PROG, CLIError, Progress, note, progress_enabled, run_quietly, say
from .outputs import prepare_out, write_outputs

__all__ = ["DemoRun", "cmd_demo", "demo_config", "demo_roi_config", "demo_runs"]


@dataclasses.dataclass(frozen=True)
class DemoRun:
    """One run of the demo.

    Attributes
    ----------
    label : str
        The run's row in the table.
    dirname : str
        Its output folder under ``--out``.
    spec : ModeSpec
        The mode.
    solver : SolverSpec or None
        The implementation (``None`` for a mode without a solver table).
    is_auto : bool
        The implementation is the mode's automatic choice.
    loss : str
        The loss it fits: least squares where the implementation fits it, else its
        own (the Poisson NNLS).
    """

    label: str
    dirname: str
    spec: object
    solver: object = None
    is_auto: bool = False
    loss: str = "frobenius"


def demo_runs() -> list[DemoRun]:
    """Every run of the demo, in the order of :data:`~napari_unmix.core.MODES`.

    A mode without a solver table once; a mode whose seeds build maps (seeded NNMF)
    from ROI seeds and a locked flat background (see :func:`demo_roi_config`), with
    the automatic implementation only; any other mode with every available
    implementation of its table, so that they can be compared.

    Returns
    -------
    list of DemoRun
    """
    runs = []
    for mode, spec in MODES.items():
        if spec.pick_solver is None:
            runs.append(DemoRun(mode, mode, spec))
            continue
        auto = spec.pick_solver()
        if spec.builds_maps:
            runs.append(DemoRun(f"{mode} {auto.algorithm}/{auto.backend}, ROI seeds + flat bg",
                                f"{mode}-{auto.algorithm}-{auto.backend}", spec, auto, True))
            continue
        for (solver, backend), s in spec.solvers.items():
            if s.available():
                loss = "frobenius" if "frobenius" in s.losses else min(s.losses)
                tail = "" if loss == "frobenius" else f" ({loss} loss)"
                runs.append(DemoRun(f"{mode} {solver}/{backend}{tail}",
                                    f"{mode}-{solver}-{backend}"
                                    + ("" if loss == "frobenius" else f"-{loss}"),
                                    spec, s, (solver, backend) == (auto.algorithm,
                                                                   auto.backend), loss))
    return runs


def warm_up() -> None:
    """Import the libraries the solvers use lazily, so that imports are not timed."""
    import scipy.optimize  # noqa: F401
    import sklearn.decomposition  # noqa: F401

    from ..core.device import get_torch

    get_torch()


def demo_roi_config(sample, spec, *, max_iter, random_state, negative="raise"):
    """Seeded NNMF as a user would seed it: painted ROIs and a locked flat background.

    Lipid, protein and water are seeded with the mean spectrum of an ROI of 25
    pixels where each dominates (what a user paints over a droplet, a nucleus and
    the medium; the ROIs are placed from the sample's ground truth only to imitate
    that).  The non-resonant background is spectrally flat, which CRS users know:
    it is seeded with a constant spectrum (:class:`~napari_unmix.core.Flat`)
    and locked.  ROI means are mixtures (a
    droplet sits on cytoplasm, everything sits on water and background), and this
    sample has no pixel with lipid alone, so no NNMF can take the rest of the
    mixing out of the lipid and protein spectra.  The locked flat row takes the
    offset the ROI means carry (``Flat(absorb_offsets=True)``).

    Parameters
    ----------
    sample : SyntheticSample
    spec : ModeSpec
        The seeded mode.
    max_iter, random_state : int
    negative : {'raise', 'clip', 'offset'}, default 'raise'
        The policy for negative values (noise on dim pixels).

    Returns
    -------
    AnalysisConfig
    """
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
    return AnalysisConfig(mode=spec.name, components=comps, max_iter=max_iter,
                          random_state=random_state, spectral_unit=sample.spectral_unit,
                          negative=negative)


def demo_config(sample, run: DemoRun, *, max_iter, random_state, negative="raise"):
    """The :class:`~napari_unmix.core.AnalysisConfig` of one demo run that is not
    seeded from ROIs: its mode, implementation, loss and options; a fixed-spectra mode
    fits the sample's true spectra (embedded), the others find ``k`` components.  The
    demo runs it and writes it as the run's ``config.json``, so that ``napari-unmix run
    sample.tif --config <run>/config.json`` makes the same maps.

    Parameters
    ----------
    sample : SyntheticSample
    run : DemoRun
    max_iter, random_state : int
    negative : {'raise', 'clip', 'offset'}, default 'raise'

    Returns
    -------
    AnalysisConfig
    """
    spec = run.spec
    options = {"solver": None if run.solver is None else run.solver.algorithm,
               "backend": None if run.solver is None else run.solver.backend,
               "max_iter": max_iter, "random_state": random_state,
               "loss": None if run.loss == "frobenius" else run.loss, "negative": negative}
    kw = {name: v for name, v in options.items() if v is not None and spec.uses(name)}
    if spec.fixed_spectra:
        kw["components"] = [
            ComponentSpec(name, color=sample.colors[j],
                          h_source=Spectrum(np.asarray(sample.H[j]),
                                            axis=np.asarray(sample.spectral_axis)))
            for j, name in enumerate(sample.component_names)]
    else:
        kw["n_components"] = sample.n_components
    return AnalysisConfig(mode=spec.name, spectral_unit=sample.spectral_unit, **kw)


def _fmt(v, spec, na="n/a"):
    return na if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def cmd_demo(args) -> int:
    """The ``demo`` command.

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``demo`` (see :func:`napari_unmix.cli.main.build_parser`).

    Returns
    -------
    int
        The exit status (0).
    """
    quiet = args.quiet
    out = Path(args.out)
    shape = (args.size, args.size)
    t_start = time.perf_counter()
    sample = make_crs_sample(shape=shape, n_channels=args.channels, noise=args.noise,
                             random_state=args.random_state)
    k = sample.n_components
    lo, hi = sample.spectral_axis[0], sample.spectral_axis[-1]
    say(f"{PROG} demo: synthetic CRS sample, {shape[0]} x {shape[1]} pixels, {args.channels} "
        f"channels ({lo:g}-{hi:g} {sample.spectral_unit}), {k} components "
        f"({', '.join(sample.component_names)}), noise {args.noise:g}", quiet=quiet)
    n_negative = int((sample.stack < 0).sum())
    if n_negative and args.negative == "raise":
        raise CLIError(f"the sample holds {n_negative} negative value(s) at --noise "
                       f"{args.noise:g} (noise on dim pixels), which --negative raise refuses; "
                       "use --negative clip or --negative offset, or a lower --noise.")
    if n_negative:
        how = {"clip": "clip them to 0", "offset": "shift all data up by the minimum"}
        note(f"the sample holds {n_negative} negative value(s) at --noise {args.noise:g} (noise "
             f"on dim pixels); the non-negative modes {how[args.negative]} (--negative "
             f"{args.negative}, recorded in each result)", quiet)
    runs = demo_runs()  # also imports torch, when installed, outside the timings
    check_demo_out(out, [run.dirname for run in runs])
    prepare_out(out)
    write_stack_tiff(out / "sample.tif", sample.stack, axes="CYX",
                     spectral_values=sample.spectral_axis, spectral_unit=sample.spectral_unit)
    truth = out / "ground_truth"
    write_maps_tiff(truth / "maps.tif", sample.maps, sample.component_names)
    write_spectra_csv(truth / "spectra.csv", sample.H, sample.spectral_axis,
                      sample.component_names, sample.spectral_unit)

    spatial_shape = tuple(sample.stack.shape[1:])
    warm_up()
    rows = []
    for run in runs:
        spec = run.spec
        shown = run.label + (" (auto)" if run.is_auto else "")
        make = demo_roi_config if spec.builds_maps else demo_config
        cfg = make(sample, spec if spec.builds_maps else run, max_iter=args.max_iter,
                   random_state=args.random_state, negative=args.negative)
        progress = Progress(shown, progress_enabled(args))
        t0 = time.perf_counter()
        try:  # a run of its config, as 'run --config' of its config.json is
            res, warned = run_quietly(run_analysis, sample.stack, cfg, spectral_axis=0,
                                      spectral_values=sample.spectral_axis, callback=progress)
        except CLIError as exc:
            note(f"{run.label} skipped: {exc}", quiet)
            continue
        finally:
            progress.close()
        elapsed = time.perf_counter() - t0
        scores = None
        colors = list(DEFAULT_COLORS[:k]) if k <= len(DEFAULT_COLORS) else None
        names = None
        if spec.non_negative:  # signed components (PCA) are no abundances to score
            scores = score_against_truth(sample.W, sample.H, res.W, res.H,
                                         names=sample.component_names)
            names = [f"C{i + 1}" for i in range(res.n_components)]
            for p in scores["pairs"]:
                e = p["est_index"]
                names[e] = (p["true"] if spec.fixed_spectra
                            else f"C{e + 1}~{p['true']}")
                if colors:
                    # the flat background tints every pixel: leave it out of the picture
                    colors[e] = (None if p["true"] == "background"
                                 else sample.colors[p["true_index"]])
        res = dataclasses.replace(res, component_names=names or [],
                                  spectral_values=sample.spectral_axis,
                                  spectral_unit=sample.spectral_unit)
        extra = {"demo": {"sample": {"shape": list(shape), "n_channels": args.channels,
                                     "noise": args.noise, "random_state": args.random_state,
                                     "noise_floor": sample.noise_floor},
                          "ground_truth_scores": scores, "auto_choice": run.is_auto,
                          "warnings": warned, "wall_time_s": elapsed}}
        write_outputs(out / run.dirname, res, spatial_shape, colors=colors, extra=extra)
        rows.append({"run": shown, "dir": run.dirname, "where": f"{res.backend}/{res.device}",
                     "time": elapsed, "n_iter": res.n_iter if spec.uses("max_iter") else None,
                     "exact": run.solver is not None and run.solver.exact,
                     "capped": bool(res.summary.hit_max_iter),
                     "rel": res.summary.relative_error,
                     "sa": None if scores is None else scores["mean_spectral_angle"],
                     "rmse": None if scores is None else scores["abundance_rmse"],
                     "roi_seeded": spec.name if spec.builds_maps else None,
                     "warnings": warned})
    total = time.perf_counter() - t_start
    print_table(rows, sample, out, total, quiet)
    return 0


_TRUTH_FILES = {"maps.tif", "spectra.csv"}


def check_demo_out(out, run_dirs) -> None:
    """Refuse a ``--out`` whose files the demo would replace, before it writes any.

    The folder may be missing, empty or an earlier demo's: ``sample.tif``,
    ``ground_truth/`` (``maps.tif``, ``spectra.csv``) and one output set per run
    (``run_dirs``).  Anything else in it, or in those places, is the user's.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file; give a folder (it is created if missing).")
    if not out.is_dir():
        return
    foreign = []
    for entry in sorted(out.iterdir()):
        if entry.name in run_dirs and entry.is_dir():
            try:
                check_output_folder(entry)
            except ValueError:
                foreign.append(entry.name + "/")
        elif entry.name == "sample.tif" and entry.is_file():
            continue
        elif entry.name == "ground_truth" and entry.is_dir():
            foreign += [f"ground_truth/{e.name}" for e in sorted(entry.iterdir())
                        if e.name not in _TRUTH_FILES]
        elif entry.name not in (".DS_Store", "Thumbs.db", "desktop.ini"):
            foreign.append(entry.name)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise CLIError(f"--out {out} holds {shown}, which the demo did not write; its outputs "
                       f"would mix with them. Give an empty or new folder, e.g. --out "
                       f"{out.resolve().with_name(out.resolve().name + '-demo')}.")


def print_table(rows, sample, out, total, quiet) -> None:
    """Print the demo's table of runs and what its columns mean.

    Parameters
    ----------
    rows : list of dict
        One per run (see :func:`cmd_demo`).
    sample : SyntheticSample
    out : Path
        The output folder.
    total : float
        Wall time of the whole demo, in seconds.
    quiet : bool
        Print nothing.
    """
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
    for seeded in dict.fromkeys(r["roi_seeded"] for r in rows if r["roi_seeded"]):
        print(f"  {seeded}: lipid, protein and water seeded from 25-pixel ROIs (mixtures, as "
              "painted ROIs are); the background seeded flat and locked (its angle is 0 by "
              "construction), taking the offsets of the other spectra.")
    if any(r["capped"] for r in rows):
        print("  (cap) = stopped at --max-iter before meeting tol: raise --max-iter for a "
              "converged fit.")
    print(f"\noutputs in {out}/: sample.tif (the stack), ground_truth/ (true maps and spectra), "
          "and per run " + ", ".join(f"{r['dir']}/" for r in rows))
    print("  each run folder holds maps.tif, spectra.csv, composite.png (the component "
          "matched to the flat background left out), config.json (run it again: "
          f"{PROG} run {out / 'sample.tif'} --config <run folder>/config.json), result.json, "
          "result.npz")
    with_spectra = next((name for name, s in MODES.items() if s.needs_spectra), None)
    if with_spectra is not None:
        print(f"try: {PROG} run {out / 'sample.tif'} --mode {with_spectra} --spectra "
              f"{out / 'ground_truth' / 'spectra.csv'} --out {out / ('my-' + with_spectra)}")
    print(f"total time {total:.1f} s")
