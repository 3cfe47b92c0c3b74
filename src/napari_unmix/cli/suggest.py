"""``napari-unmix suggest-k`` and ``napari-unmix suggest``: the unsupervised start.

``suggest-k STACK`` prints the curves of
:func:`~napari_unmix.core.ksuggest.suggest_n_components` (scree, NNMF residual
against the noise floor, bi-cross-validation) and the suggested number of
components.

``suggest STACK --out DIR`` runs the unsupervised pipeline
(:func:`~napari_unmix.core.pipeline.suggest_analysis`): the number of components
(``-k`` or suggested), seed regions from the purest pixels (or Ward regions), and
a seeded-NNMF config seeded from them, which it runs and writes as the output set
of ``run`` (its ``config.json`` reruns it with ``napari-unmix run --config``;
``result.json`` holds the suggestion under ``"suggestion"``).  ``--seeds FILE``
also writes the seed regions as a label image (edit it, then ``run --mode
seeded-nmf --labels FILE``), ``--save-config FILE`` the config, and ``--no-run``
stops there.

A subcommand rather than a mode of ``run``: a mode runs the config it is given,
while here the config itself (how many components, seeded where) is what is
decided; the result is an ordinary seeded-NNMF result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..core import MODES, AnalysisConfig
from ..core.colors import default_colors
from ..core.data import NAN_POLICIES, NEGATIVE_POLICIES
from ..core.ksuggest import CV_METHODS, suggest_n_components
from ..core.pipeline import suggest_analysis
from ..core.seed_suggestions import SEED_METHODS
from .console import CLIError, Progress, note, progress_enabled, run_quietly, say, warning
from .outputs import (
    check_out,
    check_output_files,
    spatial_pixel_size,
    write_output_file,
    write_outputs,
)
from .report import describe

__all__ = ["add_suggest_commands", "cmd_suggest", "cmd_suggest_k", "format_curves"]


def _count(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return v


def _common(p) -> None:
    p.add_argument("input", metavar="INPUT",
                   help="stack: .tif/.tiff (ImageJ, OME), .lsm (Zeiss), .npy, .npz or a folder "
                   "of slices")
    p.add_argument("--spectral-axis", type=int, default=None, metavar="I",
                   help="index of the spectral axis (default: from the file's metadata, "
                   "else axis 0)")
    p.add_argument("--series", type=int, default=None, metavar="N",
                   help="TIFF: the image series to read (default 0)")
    p.add_argument("--k-max", type=_count, default=12, metavar="N",
                   help="largest number of components tried (default 12)")
    p.add_argument("--random-state", type=_seed, default=0, metavar="SEED",
                   help="seed of the cross-validation's folds (and of the run; default 0)")
    p.add_argument("--nan-policy", choices=NAN_POLICIES, default=None,
                   help="pixels with NaN or infinite values: raise (default) or omit (left "
                   "out of the suggestion and of the run, with NaN maps; as for run)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show a progress bar (default: only on a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="never show a progress bar")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors and warnings only")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of an error instead of one line")


def add_suggest_commands(sub) -> None:
    """Add ``suggest-k`` and ``suggest`` to the parser's subcommands."""
    k = sub.add_parser(
        "suggest-k", help="suggest the number of components and print the curves behind it",
        description="Print the scree (whitened eigenvalues against the noise edge), the "
        "NNMF residual against the noise floor and the bi-cross-validated error for k = 1 .. "
        "--k-max, and the number of components they suggest.")
    _common(k)
    k.add_argument("--cv", choices=CV_METHODS, default="svd",
                   help="model of the cross-validation: svd (default, fast) or nmf")
    k.add_argument("--json", metavar="FILE", default=None,
                   help="also write the curves and the suggestion as JSON")
    k.set_defaults(func=cmd_suggest_k)

    s = sub.add_parser(
        "suggest", help="suggest components and seed regions, then run seeded NNMF on them",
        description="The unsupervised pipeline: the number of components (-k, or suggested), "
        "seed regions from the purest pixels, seeded NNMF from them; writes the output set of "
        "'run' into --out (config.json reruns it with 'run --config').")
    _common(s)
    s.add_argument("-k", "--n-components", dest="k", type=_count, default=None, metavar="N",
                   help="number of components (default: suggested, see suggest-k)")
    s.add_argument("--out", default=None, metavar="DIR",
                   help="output folder of the run (needed unless --no-run)")
    s.add_argument("--method", choices=SEED_METHODS, default="purest",
                   help="seed regions: purest (purest pixels, default) or ward (spatially "
                   "coherent Ward regions)")
    s.add_argument("--seeds", metavar="FILE", default=None,
                   help="also write the seed regions as a label image (.tif or .npy)")
    s.add_argument("--save-config", metavar="FILE", default=None,
                   help="also write the seeded-NNMF config (JSON)")
    s.add_argument("--no-run", action="store_true",
                   help="only suggest: write --seeds / --save-config and stop")
    s.add_argument("--anchor", type=float, default=None, metavar="TRUST",
                   help="trust in the seed spectra (default 1, as for run)")
    s.add_argument("--max-iter", type=_count, default=None, metavar="N",
                   help="iteration cap of the seeded NNMF (default 1000)")
    s.add_argument("--negative", choices=NEGATIVE_POLICIES, default=None,
                   help="negative data values: raise (default), clip or offset")
    s.set_defaults(func=cmd_suggest)


def _load(args):
    from .run import load_stack

    policy = args.nan_policy or "raise"
    if policy == "omit" and args.func is cmd_suggest_k:
        policy = None  # the k suggestion leaves them out itself, and says so
    stack = load_stack(Path(args.input), args.spectral_axis, args.series,
                       nan_policy=policy, quiet=args.quiet)
    for n in stack.notes:
        note(n, args.quiet)
    return stack


def format_curves(ks) -> str:
    """The curves of a :class:`~napari_unmix.core.ksuggest.KSuggestion` as a table."""
    lines = [f"{'k':>3}  {'eigenvalue':>12}  {'rel. error':>10}  {'floor':>8}  "
             f"{'CV error':>9}  {'CV z':>7}"]
    for row in ks.table():
        edge = "*" if row["eigenvalue"] > ks.mp_edge else " "
        lines.append(f"{row['k']:>3}  {row['eigenvalue']:>11.4g}{edge}  "
                     f"{row['relative_error']:>10.4g}  {row['residual_floor']:>8.4g}  "
                     f"{row['cv_error']:>9.4g}  {row['cv_z']:>7.1f}")
    lines.append(f"noise edge of the whitened eigenvalues: {ks.mp_edge:.4g} (* above it); "
                 f"noise floor {ks.noise_floor:.4g}; {ks.n_pixels_used} pixels")
    lines.append(f"suggested k = {ks.k} (scree {ks.k_scree}, residual {ks.k_residual}, "
                 f"cross-validation {ks.k_cv})")
    return "\n".join(lines)


def cmd_suggest_k(args) -> int:
    """The ``suggest-k`` command."""
    check_output_files([("--json", args.json)], [("the input stack", args.input)])
    stack = _load(args)
    ks = suggest_n_components(stack.data, spectral_axis=stack.spectral_axis,
                              k_max=args.k_max, cv=args.cv, random_state=args.random_state)
    say(format_curves(ks), quiet=args.quiet)
    for n in ks.notes:
        note(n, args.quiet)
    if args.json:
        write_output_file("--json", args.json,
                          lambda tmp: tmp.write_text(ks.to_json(indent=1), encoding="utf-8"))
        say(f"wrote {args.json}", quiet=args.quiet)
    return 0


#: The label image formats of ``--seeds``.
SEED_SUFFIXES = (".npy", ".tif", ".tiff")


def _write_labels(path, labels) -> None:
    """Write the seed regions to ``--seeds`` (a .npy or .tif file), atomically."""
    import tifffile

    def write(tmp):
        with open(tmp, "wb") as fh:  # to a handle: np.save would add .npy to the name
            if Path(path).suffix.lower() == ".npy":
                np.save(fh, labels)
            else:
                tifffile.imwrite(fh, labels.astype(np.uint16 if labels.max() < 65536
                                                   else np.int32))

    write_output_file("--seeds", path, write)


def cmd_suggest(args) -> int:
    """The ``suggest`` command."""
    from .run import check_negative

    if args.no_run and not (args.seeds or args.save_config):
        raise CLIError("--no-run writes only --seeds FILE and --save-config FILE; give one.")
    check_output_files([("--seeds", args.seeds), ("--save-config", args.save_config)],
                       [("the input stack", args.input)])
    if args.seeds and Path(args.seeds).suffix.lower() not in SEED_SUFFIXES:
        raise CLIError(f"--seeds {args.seeds}: give a .tif or .npy file name.")
    if not args.no_run:
        if args.out is None:
            raise CLIError("give --out DIR for the run's outputs (or --no-run).")
        check_out(args.out, [("the input stack", args.input), ("--seeds", args.seeds),
                             ("--save-config", args.save_config)])
    stack = _load(args)
    data, axis = stack.data, stack.spectral_axis
    spatial_shape = tuple(s for i, s in enumerate(data.shape) if i != axis)
    changes = {key: v for key, v in (("anchor", args.anchor), ("max_iter", args.max_iter),
                                      ("negative", args.negative),
                                      ("nan_policy", args.nan_policy)) if v is not None}
    if stack.spectral_unit is not None:
        changes["spectral_unit"] = stack.spectral_unit
    base = AnalysisConfig(mode="seeded-nmf", random_state=args.random_state, **changes)
    check_negative(data, MODES["seeded-nmf"], base.negative, args.input)
    t0 = time.perf_counter()
    auto, warned = run_quietly(suggest_analysis, data, spectral_axis=axis, n_components=args.k,
                               k_max=args.k_max, base=base,
                               seed_options={"method": args.method},
                               random_state=args.random_state)
    for w in warned:
        warning(w)
    if auto.k is not None:
        say(format_curves(auto.k), quiet=args.quiet)
    for n in auto.notes:
        note(n, args.quiet)
    sizes = ", ".join(f"{n}: {s} px" for n, s in zip(auto.seeds.names, auto.seeds.sizes,
                                                      strict=True))
    say(f"{auto.n_components} seed regions ({auto.seeds.method}): {sizes}", quiet=args.quiet)
    if args.seeds:
        _write_labels(args.seeds, auto.seeds.labels)
        say(f"wrote the seed regions to {args.seeds}", quiet=args.quiet)
    if args.save_config:
        write_output_file("--save-config", args.save_config, lambda tmp: tmp.write_text(
            auto.config.to_json(indent=1), encoding="utf-8"))
        say(f"wrote the config to {args.save_config}", quiet=args.quiet)
    if args.no_run:
        return 0
    from ..core import run_analysis

    progress = Progress("seeded-nmf", progress_enabled(args))
    try:
        res, warned = run_quietly(run_analysis, data, auto.config, spectral_axis=axis,
                                  spectral_values=stack.spectral_values, callback=progress)
    finally:
        progress.close()
    for w in warned:
        warning(w)
    elapsed = time.perf_counter() - t0
    auto.result = res
    extra = {"input": {"path": str(Path(args.input).resolve()), "spectral_axis_index": axis,
                       "shape": list(data.shape), "dtype": str(data.dtype)},
             "suggestion": json.loads(json.dumps(auto.to_dict())), "warnings": warned,
             "wall_time_s": elapsed}
    files = write_outputs(args.out, res, spatial_shape,
                          colors=default_colors(res.n_components), extra=extra,
                          pixel_size=spatial_pixel_size(stack), spectral_axis=axis)
    say(f"done: {describe(res, MODES[res.mode])}, {res.n_iter} iteration(s), "
        f"{elapsed:.2f} s, relative error {res.summary.relative_error:.4g}", quiet=args.quiet)
    say(f"wrote {', '.join(files)} to {Path(args.out)}", quiet=args.quiet)
    return 0
