"""``napari-unmix run``: unmix one stack and write its output set.

:func:`cmd_run` loads the stack (TIFF, .npy, .npz or a folder of slices), builds the
:class:`~napari_unmix.core.config.AnalysisConfig` from ``--config`` and the options,
checks what the core would only refuse after a long setup (negative values, ``k``,
solver names, the output folder), runs
:func:`~napari_unmix.core.analysis.run_analysis` and writes the maps, spectra,
composite, ``result.json`` and ``result.npz``.

Nothing here names a mode: which options a mode takes, whether it is seeded, whether
its spectra stay fixed and which solver table it picks from are read from its
:class:`~napari_unmix.core.modes.ModeSpec` in :data:`~napari_unmix.core.MODES`, so a
registered mode runs from the command line without changes to this module.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..core import MODES, AnalysisConfig, ComponentSpec, run_analysis
from ..core._validation import check_n_components
from ..core.colors import default_colors
from ..core.device import resolve_device
from ..io import open_stack
from ..io.readers import TIFF_SUFFIXES
from ..io.spectral_sidecar import sidecar_path, unit_of_header
from ..io.stack import LSM_SUFFIXES
from ..io.zarr_stacks import is_zarr_folder
from .console import PROG, CLIError, Progress, note, progress_enabled, run_quietly, say, warning
from .outputs import check_out, spatial_pixel_size, write_outputs
from .report import describe, note_fallbacks, say_seed_drift
from .rerun import check_labels, read_config, run_labels
from .scheduler import scheduler_client, scheduler_for, where_text
from .seed_inputs import (
    flat_background_component,
    label_components,
    spectra_components,
)
from .series import check_series_config, place_seeds, say_series, series_plan

__all__ = ["CONFIG_FLAGS", "MODE_FLAGS", "analysis_config", "check_finite",
           "check_mode_options", "cmd_run", "load_stack", "mode_takes", "precheck"]

#: The options of ``run`` that only some modes take: argparse ``dest`` -> (the flag,
#: the :class:`~napari_unmix.core.config.AnalysisConfig` field it sets).  A flag is
#: refused when its mode does not use the field (:func:`mode_takes`).
MODE_FLAGS = {
    "solver": ("--solver", "solver"),
    "backend": ("--backend", "backend"),
    "device": ("--device", "device"),
    "tol": ("--tol", "tol"),
    "max_iter": ("--max-iter", "max_iter"),
    "random_state": ("--random-state", "random_state"),
    "negative": ("--negative", "negative"),
    "anchor": ("--anchor", "anchor"),
    "abundance": ("--abundance", "abundance"),
    "loss": ("--loss", "loss"),
    "n_jobs": ("--n-jobs", "n_jobs"),
    "spectra": ("--spectra", "components"),
    "labels": ("--labels", "components"),
    "flat_background": ("--flat-background", "components"),
    "k": ("-k", "n_components"),
}
#: The options that override the config field of their own name.
CONFIG_FLAGS = tuple(dest for dest, (_, fld) in MODE_FLAGS.items() if dest == fld)


def mode_takes(spec, field: str) -> bool:
    """Whether the mode ``spec`` takes the options that set the config field ``field``.

    The mode's :meth:`~napari_unmix.core.modes.ModeSpec.uses`, except that a seeded
    mode takes ``-k`` (``n_components``): its components are the seeded ones, and
    ``-k`` checks their number or, when the spectra are refined, adds unseeded ones.

    Parameters
    ----------
    spec : ModeSpec
    field : str
        An :class:`~napari_unmix.core.config.AnalysisConfig` field name.

    Returns
    -------
    bool
    """
    return spec.uses(field) or (field == "n_components" and spec.seeded)


def check_mode_options(args, spec) -> None:
    """Refuse the options of :data:`MODE_FLAGS` that the mode does not take.

    Parameters
    ----------
    args : argparse.Namespace
    spec : ModeSpec

    Raises
    ------
    CLIError
        Naming the flag and the modes that take it.
    """
    for dest, (flag, field) in MODE_FLAGS.items():
        if getattr(args, dest) is not None and not mode_takes(spec, field):
            users = ", ".join(name for name, s in MODES.items() if mode_takes(s, field))
            raise CLIError(f"{flag} is not used by --mode {spec.name} (only by {users}); "
                           "leave it out.")


def load_stack(path, spectral_axis, series=None, *, nan_policy="raise", quiet=True):
    """The stack at ``path``, refused when it has no spatial axis, or holds NaN / inf
    (under ``nan_policy="raise"``: :func:`check_finite`).

    Parameters
    ----------
    path : Path
    spectral_axis : int or None
        ``--spectral-axis``.
    series : int or None
        ``--series`` (TIFF files only).
    nan_policy : {"raise", "omit"} or None, default "raise"
        Check for NaN / inf here (:func:`check_finite`); ``None``: the caller checks
        once the policy is known (``run --config`` may set it).
    quiet : bool, default True
        ``--quiet`` (the note of ``"omit"``).

    Returns
    -------
    StackData
    """
    if series is not None and path.suffix.lower() in LSM_SUFFIXES:
        raise CLIError(f"--series picks an image series of a TIFF file, but {path} is a Zeiss "
                       "LSM file, which holds one image (its other series are thumbnails); "
                       "leave --series out.")
    if series is not None and (path.is_dir() or path.suffix.lower() not in TIFF_SUFFIXES):
        raise CLIError(f"--series picks an image series of a TIFF file, but {path} is not "
                       "one; leave --series out.")
    try:
        stack = open_stack(path, spectral_axis=spectral_axis, series=series,
                           lazy=True if is_zarr_folder(path) else False)  # zarr: chunked
    except FileNotFoundError:
        raise CLIError(f"input file {path} not found.") from None
    data = stack.data
    if stack.lazy:  # the core checks a chunked stack block by block
        return stack
    if data.ndim < 2:
        raise CLIError(f"{path} holds a {data.ndim}-D array {data.shape}; a spectral stack "
                       "needs a spectral axis and at least one spatial axis.")
    if nan_policy is not None:
        check_finite(stack, nan_policy, path, quiet)
    return stack


def check_finite(stack, policy, path, quiet=True) -> None:
    """Refuse NaN / inf values under ``--nan-policy raise``; under ``omit``, note how many
    pixels are left out (the core leaves them out and records it).

    Parameters
    ----------
    stack : StackData
    policy : {"raise", "omit"}
    path : str or Path
        The input, for the message.
    quiet : bool
        ``--quiet`` (the note).
    """
    data = stack.data
    if stack.lazy or data.dtype.kind not in "fc":
        return  # a chunked stack: the core checks it block by block; integers are finite
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    n_nan = int(np.isnan(data).sum())
    counts = f"{n_nan} NaN and {int(bad.sum()) - n_nan} infinite value(s)"
    if policy == "raise":
        raise CLIError(
            f"{path} holds {counts}; the CLI does not drop pixels unless asked. Pass "
            "--nan-policy omit to leave those pixels out of the fit (their maps are NaN; "
            "recorded in result.json), or replace them (or crop them away) and run again.")
    omitted = int(bad.any(axis=stack.spectral_axis).sum())
    note(f"{path} holds {counts}: the {omitted} pixel(s) holding them are left out of the "
         "fit and of the seeds, with NaN maps (--nan-policy omit).", quiet)


def analysis_config(args, stack, n_channels, spatial_shape, *, source=None, plane_shape=None):
    """The AnalysisConfig of ``run``: ``--config`` (if any), then the command-line options.

    Parameters
    ----------
    args : argparse.Namespace
    stack : StackData
    n_channels : int
    spatial_shape : tuple of int
    source : ConfigSource, optional
        ``--config`` already read (read here otherwise).
    plane_shape : tuple of int, optional
        A series run's plane shape: ``--labels`` may be one plane's label image.

    Returns
    -------
    config : AnalysisConfig
    values : ndarray or None
        The spectral values of the channels (from the stack, else from ``--spectra``).
    labels : ndarray or None
        The label image of ``--labels``.
    """
    if source is None and args.config is not None:
        source = read_config(args.config)  # a file, a result folder or a result .npz
    if source is not None:
        cfg = source.config
        if args.mode is not None and args.mode != cfg.mode:
            cfg = cfg.replace(mode=args.mode)
    elif args.mode is None:
        raise CLIError(f"give --mode ({', '.join(MODES)}) or --config FILE.")
    else:
        cfg = AnalysisConfig(mode=args.mode)
    mode = cfg.mode
    spec = MODES[mode]
    check_mode_options(args, spec)
    overrides = {f: getattr(args, f) for f in CONFIG_FLAGS if getattr(args, f) is not None}
    if getattr(args, "nan_policy", None) is not None:  # every mode takes it
        overrides["nan_policy"] = args.nan_policy
    values, unit = stack.spectral_values, stack.spectral_unit
    if values is None and source is not None and source.spectral_values is not None \
            and len(source.spectral_values) == n_channels:
        values, unit = source.spectral_values, source.spectral_unit
        note(f"{Path(args.input).name} has no spectral axis of its own: its {n_channels} "
             f"channels are taken to lie where those of the result of --config {args.config} "
             f"did ({values[0]:g} to {values[-1]:g}{' ' + unit if unit else ''}); if they do "
             "not, give the stack's axis as a sidecar <stack>.spectral.csv.", args.quiet)
    comps = list(cfg.components)
    labels, _ = run_labels(source, args.labels, spatial_shape, plane_shape=plane_shape,
                           new_labels=getattr(args, "new_labels", False),
                           compare=plane_shape is None)  # a series: once placed (cmd_run)
    if comps and args.spectra is not None:
        raise CLIError(f"{args.config} already defines the components; leave out --spectra "
                       "or remove the components from the config.")
    if not comps and (args.spectra is not None or args.labels is not None):
        if args.spectra is not None:
            more, values_from_file, axis_name = spectra_components(
                args.spectra, n_channels, values, unit=unit, quiet=args.quiet)
            comps += more
            if values is None:
                values, unit = values_from_file, unit_of_header(axis_name)
                note(f"{Path(args.input).name} has no spectral axis of its own: its "
                     f"{n_channels} channels are taken to lie at the {axis_name or 'first'}"
                     f" column of {Path(args.spectra).name} ({values[0]:g} to "
                     f"{values[-1]:g}); if they do not, give the stack's axis as a "
                     "sidecar <stack>.spectral.csv.", args.quiet)
        if args.labels is not None:
            comps += label_components(labels, args.labels)
    if args.flat_background:
        comps.append(flat_background_component(comps))
    if spec.seeded:
        if not comps:
            what = "the trusted spectra" if spec.fixed_spectra else "seed spectra or regions"
            raise CLIError(f"--mode {mode} needs {what}: pass --spectra CSV (first column the "
                           "spectral axis, one component per spectrum), --labels LABELS.tif "
                           "(one component per label id) or --config FILE.")
        given = cfg.n_components
        if args.k is None and given is not None and cfg.components \
                and given != len(cfg.components):
            raise CLIError(f"--config {args.config} asks for n_components {given} but defines "
                           f"{len(cfg.components)} component(s); remove n_components from it, "
                           "or give -k (a larger -k adds unseeded components).")
        k = args.k
        if not spec.fixed_spectra and k is not None and k > len(comps):
            # the extra components are found by the residual H-seed fallback
            taken = {c.name for c in comps}
            extra = [f"C{i}" for i in range(1, 2 * k + 1) if f"C{i}" not in taken]
            comps += [ComponentSpec(name) for name in extra[:k - len(comps)]]
        elif k is not None and k != len(comps):
            raise CLIError(f"-k {k} does not match the {len(comps)} seeded component(s); leave "
                           "-k out" + (" or give a larger -k to add unseeded components."
                                       if not spec.fixed_spectra else "."))
        overrides.update(components=comps, n_components=None)
    elif spec.uses("n_components"):
        k = args.k if args.k is not None else cfg.n_components
        if k is None:
            raise CLIError(f"--mode {mode} needs the number of components: pass -k N.")
        overrides.update(n_components=k)
    overrides["label_image"] = None  # read (run_labels): the result names no file of it
    overrides["series"] = None  # read (series_plan): the run's result records its own
    if unit is not None:
        overrides["spectral_unit"] = unit
    elif values is None and cfg.spectral_unit is not None:
        overrides["spectral_unit"] = None  # channel indices have no unit
        note(f"--config {args.config} names the spectral unit {cfg.spectral_unit}, but "
             f"{Path(args.input).name} carries no spectral values (its channels are "
             f"numbered 0 to {n_channels - 1}): the unit is not applied and the result "
             "records channel indices. To give the stack's spectral axis, write it to "
             f"{sidecar_path(args.input)} (one value per channel, under a header naming "
             "the unit, e.g. wavenumber (cm^-1)).", args.quiet)
    return cfg.replace(**overrides), values, labels


def check_negative(data, spec, policy, path) -> None:
    """Refuse negative data for a non-negative mode under the policy ``"raise"``.

    Parameters
    ----------
    data : ndarray
    spec : ModeSpec
    policy : str
        The config's ``negative``.
    path : str
        The input, for the message.
    """
    if not spec.non_negative or policy != "raise" or not isinstance(data, np.ndarray):
        return  # a chunked stack: the core checks it block by block
    lo = float(np.nanmin(data)) if data.dtype.kind == "f" else float(np.min(data))
    if lo < 0:  # NaN values are checked apart (check_finite)
        n_neg = int((np.asarray(data) < 0).sum())
        raise CLIError(
            f"{path} holds {n_neg} negative value(s) (minimum {lo:.6g}), but --mode "
            f"{spec.name} needs non-negative data. Pass --negative clip (negative values "
            "become 0) or --negative offset (all data shifted up by the minimum); the choice "
            "is recorded in result.json.")


def precheck(cfg, shape) -> int:
    """Check what the core would refuse only after a long setup (k, solver names).

    Parameters
    ----------
    cfg : AnalysisConfig
    shape : tuple of int
        ``(n_pixels, n_channels)``.

    Returns
    -------
    int
        The number of components.
    """
    spec = MODES[cfg.mode]
    k = cfg.n_components if cfg.n_components is not None else len(cfg.components)
    # fixed spectra: the mode takes as many spectra as it is given
    if mode_takes(spec, "n_components") and not spec.fixed_spectra:
        check_n_components(k, *shape, mode=cfg.mode)
    if spec.pick_solver is not None:
        solver = spec.pick_solver(cfg.solver, cfg.backend, config=cfg)
        if solver.needs_torch:  # a device torch does not know, or a GPU it does not see
            resolve_device(cfg.device)
    return k


def cmd_run(args) -> int:
    """The ``run`` command.

    Parameters
    ----------
    args : argparse.Namespace
        The options of ``run`` (see :func:`napari_unmix.cli.main.build_parser`).

    Returns
    -------
    int
        The exit status (0).
    """
    quiet = args.quiet
    # before anything is read: --out must not be or hold an input (the output set
    # replaces the folder whole); it is created only when the outputs are written
    check_out(args.out, [("the input stack", args.input), ("--spectra", args.spectra),
                         ("--labels", args.labels), ("--config", args.config)])
    # NaN / inf are checked first, unless the policy comes from --config (read below)
    nan_policy = getattr(args, "nan_policy", None) or (None if args.config else "raise")
    stack = load_stack(Path(args.input), args.spectral_axis, getattr(args, "series", None),
                       nan_policy=nan_policy, quiet=quiet)
    for n in stack.notes:
        note(n, quiet)
    data = stack.data
    axis = stack.spectral_axis
    n_channels = data.shape[axis]
    spatial_shape = tuple(s for i, s in enumerate(data.shape) if i != axis)
    n_pixels = int(np.prod(spatial_shape))
    source = None if args.config is None else read_config(args.config)
    plan = series_plan(args, data.shape, axis, source, name=Path(args.input).name)
    cfg, values, labels = analysis_config(
        args, stack, n_channels, spatial_shape, source=source,
        plane_shape=None if plan is None else plan.plane_shape)
    mode = cfg.mode
    spec = MODES[mode]
    if nan_policy is None:
        check_finite(stack, cfg.nan_policy, args.input, quiet)
    check_negative(data, spec, cfg.negative, args.input)
    labels_file = args.labels if source is None or args.labels is not None \
        else source.labels_file
    if plan is not None:  # the seeds on the plane(s) fitted, as the dock puts them
        given = labels
        cfg, labels = place_seeds(plan, cfg, labels, spectral_axis=axis, quiet=quiet)
        check_labels(source, labels_file, given, placed=labels,
                     new_labels=getattr(args, "new_labels", False) and args.labels is not None)
        check_series_config(plan, cfg)
        n_pixels = int(np.prod(plan.plane_shape))  # each fit sees one plane's pixels
    k = precheck(cfg, (n_pixels, n_channels))

    layout = (f"spatial shape {spatial_shape}" if plan is None else
              f"a {plan.strategy} series of {plan.n_planes} planes along axis {plan.axis}, "
              f"plane shape {plan.plane_shape}")
    say(f"{PROG} run: {mode} with k={k} on {Path(args.input).name} "
        f"({n_pixels} pixels x {n_channels} channels, {layout})", quiet=quiet)
    scheduler = scheduler_for(getattr(args, "scheduler", None), lazy=stack.lazy,
                              input_name=Path(args.input).name, quiet=quiet)
    # the outputs too: a dask W is streamed to the store on the cluster
    with scheduler_client(scheduler, quiet=quiet) as client:
        files, res, series, elapsed = _run_and_write(
            args, stack, cfg, values, labels, spatial_shape, plan, labels_file=labels_file)
        chunked = (getattr(res.summary, "extra", None) or {}).get("chunked")
        where = (f" ({chunked.get('n_blocks')} block(s) on "
                 f"{where_text(client if chunked.get('scheduler') == 'distributed' else None)})"
                 if isinstance(chunked, dict) else "")
    if series is not None:
        say_series(series, elapsed, quiet)
        say(f"wrote {', '.join(files)} to {Path(args.out)}", quiet=quiet)
        return 0
    rel = res.summary.relative_error
    seed = res.params.get("random_state")
    # modes that fit spectra iteratively report their iterations, even none
    iterative = spec.uses("max_iter") and not spec.fixed_spectra
    iters = f", {res.n_iter} iteration(s)" if res.n_iter or iterative else ""
    say(f"done: {describe(res, spec)}{where}{iters}, {elapsed:.2f} s"
        + (f", relative error {rel:.4g}" if rel is not None else "")
        + (f", random_state {seed}" if seed is not None else ""), quiet=quiet)
    say(f"wrote {', '.join(files)} to {Path(args.out)}", quiet=quiet)
    if args.tol is not None and getattr(res.summary, "exact", False):
        note(f"--tol {args.tol:g} was not used: {res.summary.solver} is exact (it stops at "
             "the optimum, not at a tolerance); --tol applies to --solver fista and to "
             "--loss poisson.", quiet)
    return 0


def _run_and_write(args, stack, cfg, values, labels, spatial_shape, plan=None, *,
                   labels_file=None):
    """Run the analysis (a series: ``plan``) with the progress bar and write its output
    set; returns ``(file names, result, series result or None, seconds)``."""
    quiet, data, axis = args.quiet, stack.data, stack.spectral_axis
    run = run_analysis if plan is None else plan.run
    progress = Progress(cfg.mode if plan is None else f"{cfg.mode} {plan.strategy}",
                        progress_enabled(args))
    t0 = time.perf_counter()
    try:
        res, warned = run_quietly(run, data, cfg, spectral_axis=axis, spectral_values=values,
                                  labels=labels, callback=progress)
    finally:
        progress.close()
    series, pixel_size = None, spatial_pixel_size(stack)
    if plan is not None:  # written as the dock writes a series: the series as one result
        series, res = res, plan.as_result(res)
        spatial_shape, pixel_size = plan.spatial_shape, plan.pixel_size(pixel_size, axis)
    elapsed = time.perf_counter() - t0
    for w in warned:
        warning(w)
    note_fallbacks(res, quiet)
    say_seed_drift(res, quiet)
    extra = {
        "input": {"path": str(Path(args.input).resolve()),
                  "spectral_axis_index": axis,
                  "spectral_axis_guessed": stack.guessed, "shape": list(data.shape),
                  "dtype": str(data.dtype), "notes": stack.notes},
        "config_file": None if args.config is None else str(Path(args.config).resolve()),
        "spectra_file": None if args.spectra is None else str(Path(args.spectra).resolve()),
        "labels_file": None if labels_file is None else str(Path(labels_file).resolve()),
        "warnings": warned,
        "wall_time_s": elapsed,
    }
    colors = [c.color for c in cfg.components] if cfg.components else []
    colors = [c or d for c, d in zip(colors, default_colors(len(colors)), strict=True)] or None
    files = write_outputs(args.out, res, spatial_shape, colors=colors, extra=extra,
                          pixel_size=pixel_size, maps_format=getattr(args, "out_format", "tiff"),
                          spectral_axis=axis,  # the label image of label-id seeds, kept
                          labels=labels if labels is not None and cfg.label_users() else None)
    return files, res, series, elapsed
