"""``napari-unmix``: headless spectral unmixing from the command line.

Two commands::

    napari-unmix run INPUT --mode {pca,nmf,seeded-nmf,nnls} [-k N] [--spectra CSV]
                     [--labels LABELS.tif] [--flat-background] [--config FILE] --out DIR
    napari-unmix demo [--out DIR]

``run`` unmixes one stack (TIFF, .npy or .npz) and writes the maps (TIFF), the
spectra (CSV), a false-colour composite (PNG), ``result.json`` and the exact result
(``result.npz``).  ``demo`` builds the bundled synthetic CRS sample, runs every
available mode and implementation on it and prints how well each recovered the
known ground truth.

Bad input (a missing or unreadable file, NaN in the stack, negative values without
``--negative``, ``k`` too large, spectra of the wrong length ...) prints one line
``napari-unmix: error: ...`` to stderr and exits with status 2.  ``--debug`` shows
the full traceback instead.

Modes come from :data:`napari_unmix.core.MODES` and solver / backend names from the
solver tables, so new ones appear here without changes to this module.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main"]

PROG = "napari-unmix"
EXIT_USAGE = 2


class CLIError(Exception):
    """Bad input or options: reported as one line, exit status 2."""


# -- helpers --------------------------------------------------------------------------

def _one_line(msg) -> str:
    return " ".join(str(msg).split())


def _say(msg, *, quiet=False, file=None):
    if not quiet:
        print(msg, file=file or sys.stdout, flush=True)


def _note(msg, quiet=False):
    if not quiet:
        print(f"{PROG}: note: {_one_line(msg)}", file=sys.stderr, flush=True)


def _choices():
    from .core import MODES, NMF_SOLVERS, NNLS_SOLVERS

    solvers = sorted({k[0] for k in NMF_SOLVERS} | {k[0] for k in NNLS_SOLVERS})
    backends = sorted({k[1] for k in NMF_SOLVERS} | {k[1] for k in NNLS_SOLVERS})
    return list(MODES), ["auto", *solvers], ["auto", *backends]


class _Progress:
    """A tqdm bar on stderr driven by the core ``callback(ProgressInfo)``."""

    def __init__(self, desc: str, enabled: bool):
        self.desc = desc
        self.enabled = enabled
        self.bar = None

    def __call__(self, info) -> None:
        if not self.enabled:
            return None
        if self.bar is None:
            from tqdm import tqdm

            unit = "it" if info.stage in ("nmf", "seeded-nmf") else "step"
            self.bar = tqdm(total=info.max_iter, desc=self.desc, unit=unit, leave=False,
                            file=sys.stderr, dynamic_ncols=True)
        self.bar.total = info.max_iter
        self.bar.n = info.iteration
        if info.error is not None:
            self.bar.set_postfix_str(f"error {info.error:.4g}", refresh=False)
        self.bar.refresh()
        return None

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress_enabled(args) -> bool:
    if args.progress is not None:
        return args.progress
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not args.quiet


def _run_quietly(func, *a, **kw):
    """Call ``func`` and return ``(value, [warning messages])`` (no Python warning output)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = func(*a, **kw)
    seen, messages = set(), []
    for w in caught:
        msg = _one_line(w.message)
        if msg not in seen:
            seen.add(msg)
            messages.append(msg)
    return value, messages


# -- the analysis of one stack ----------------------------------------------------------

#: Options of ``run`` and the modes that use them (others must leave them unset).
_MODE_OPTIONS = {
    "solver": ("nmf", "seeded-nmf", "nnls"),
    "backend": ("nmf", "seeded-nmf", "nnls"),
    "device": ("nmf", "seeded-nmf", "nnls"),
    "tol": ("nmf", "seeded-nmf", "nnls"),
    "max_iter": ("nmf", "seeded-nmf", "nnls"),
    "random_state": ("nmf", "seeded-nmf"),
    "negative": ("nmf", "seeded-nmf", "nnls"),
    "spectra": ("nnls", "seeded-nmf"),
    "labels": ("nnls", "seeded-nmf"),
    "flat_background": ("nnls", "seeded-nmf"),
}
#: ``run`` options that override the same field of an ``AnalysisConfig``.
_CONFIG_FIELDS = ("solver", "backend", "device", "tol", "max_iter", "random_state", "negative")


def _flag(name):
    return "--" + name.replace("_", "-")


def _check_mode_options(args, mode):
    for opt, modes in _MODE_OPTIONS.items():
        if getattr(args, opt) is not None and mode not in modes:
            users = ", ".join(m for m in modes)
            raise CLIError(f"{_flag(opt)} is not used by --mode {mode} (only by {users}); "
                           "leave it out.")


def _load_stack(path, spectral_axis):
    from .io import read_stack

    try:
        stack = read_stack(path, spectral_axis=spectral_axis)
    except FileNotFoundError:
        raise CLIError(f"input file {path} not found.") from None
    data = stack.data
    bad = ~np.isfinite(data) if data.dtype.kind == "f" else None
    if bad is not None and bad.any():
        n_nan = int(np.isnan(data).sum())
        raise CLIError(
            f"{path} holds {n_nan} NaN and {int(bad.sum()) - n_nan} infinite value(s); the "
            "CLI does not drop pixels on its own. Replace them (or crop them away) and run "
            "again.")
    if data.ndim < 2:
        raise CLIError(f"{path} holds a {data.ndim}-D array {data.shape}; a spectral stack "
                       "needs a spectral axis and at least one spatial axis.")
    return stack


def _spectra_components(path, n_channels, values):
    """Components seeded by the spectra of a CSV, and the spectral values to use.

    With a known stack axis the spectra are resampled onto it by ``run_analysis``;
    without one, the file's axis must have one row per stack channel and then tells
    where the channels are.
    """
    from .core.components import components_from_spectra
    from .core.spectra import read_spectra

    p = Path(path)
    if not p.exists():
        raise CLIError(f"spectra file {p} not found.")
    table = read_spectra(p)
    if values is None and table.axis.size != n_channels:
        raise CLIError(
            f"{p} has {table.axis.size} spectral points per spectrum but the stack has "
            f"{n_channels} channels and no spectral axis of its own to resample onto. Give "
            "the stack's spectral axis (a sidecar <stack>.spectral.csv, see the docs) or "
            "spectra sampled on the stack's channels.")
    if values is not None:
        lo, hi = float(np.min(table.axis)), float(np.max(table.axis))
        s_lo, s_hi = float(np.min(values)), float(np.max(values))
        if hi < s_lo or lo > s_hi:
            raise CLIError(f"the spectra in {p} cover {lo:g} to {hi:g} but the stack covers "
                           f"{s_lo:g} to {s_hi:g}: the ranges do not overlap. Check the units "
                           "and the stack's spectral axis.")
    comps = components_from_spectra(p)
    return comps, (table.axis if values is None else values), table.axis_name


def _read_labels(path, spatial_shape):
    """A label image (.tif or .npy) of the stack's spatial shape."""
    p = Path(path)
    if not p.exists():
        raise CLIError(f"labels file {p} not found.")
    if p.suffix.lower() == ".npy":
        labels = np.load(p, allow_pickle=False)
    else:
        import tifffile

        try:
            labels = tifffile.imread(p)
        except Exception as exc:
            raise CLIError(f"cannot read the label image {p}: {exc}") from None
    labels = np.squeeze(np.asarray(labels))
    if labels.dtype.kind not in "iub":
        raise CLIError(f"{p} holds {labels.dtype} values; a label image holds integer ids.")
    if labels.shape != tuple(spatial_shape):
        raise CLIError(f"the label image {p} has shape {labels.shape} but the stack's "
                       f"spatial shape is {tuple(spatial_shape)}.")
    return labels


def _label_components(labels, path):
    """One component per label id (> 0), seeded by the mean spectrum of its pixels."""
    from .core.components import ComponentSpec, RoiLabel

    ids = [int(i) for i in np.unique(labels) if i > 0]
    if not ids:
        raise CLIError(f"the label image {path} holds no label (every pixel is 0).")
    return [ComponentSpec(f"label {i}", h_source=RoiLabel(i)) for i in ids]


def _flat_background_component(comps):
    """A locked flat component for --flat-background (named so as not to clash)."""
    from .core.components import ComponentSpec, Flat

    taken = {c.name for c in comps}
    if any(isinstance(c.h_source, Flat) for c in comps):
        raise CLIError("the components already have a flat spectrum; leave out "
                       "--flat-background.")
    name = next(n for n in ("background", "flat background", "flat") if n not in taken)
    return ComponentSpec(name, h_source=Flat(), background=True, locked=True)


def _analysis_config(args, stack, n_channels, spatial_shape):
    """The AnalysisConfig of ``run``: --config (if any), then the command-line options."""
    from .core.analysis import AnalysisConfig
    from .core.components import ComponentSpec

    if args.config is not None:
        if not Path(args.config).exists():
            raise CLIError(f"config file {args.config} not found.")
        cfg = AnalysisConfig.load(args.config)
        if args.mode is not None and args.mode != cfg.mode:
            cfg = cfg.replace(mode=args.mode)
    elif args.mode is None:
        raise CLIError("give --mode (pca, nmf, seeded-nmf, nnls) or --config FILE.")
    else:
        cfg = AnalysisConfig(mode=args.mode)
    mode = cfg.mode
    _check_mode_options(args, mode)
    overrides = {f: getattr(args, f) for f in _CONFIG_FIELDS if getattr(args, f) is not None}
    values, unit = stack.spectral_values, stack.spectral_unit
    labels = None
    comps = list(cfg.components)
    if args.labels is not None:
        labels = _read_labels(args.labels, spatial_shape)
    if comps and args.spectra is not None:
        raise CLIError(f"{args.config} already defines the components; leave out --spectra "
                       "or remove the components from the config.")
    if not comps and (args.spectra is not None or args.labels is not None):
        if args.spectra is not None:
            more, values_from_file, axis_name = _spectra_components(
                args.spectra, n_channels, values)
            comps += more
            if values is None:
                from .io import unit_from_header

                values, unit = values_from_file, unit_from_header(axis_name)
        if args.labels is not None:
            comps += _label_components(labels, args.labels)
    if args.flat_background:
        comps.append(_flat_background_component(comps))
    if mode in ("seeded-nmf", "nnls"):
        if not comps:
            what = "the trusted spectra" if mode == "nnls" else "seed spectra or regions"
            raise CLIError(f"--mode {mode} needs {what}: pass --spectra CSV (first column the "
                           "spectral axis, one component per spectrum), --labels LABELS.tif "
                           "(one component per label id) or --config FILE.")
        k = args.k
        if mode == "seeded-nmf" and k is not None and k > len(comps):
            # the extra components are found by the residual H-seed fallback
            taken = {c.name for c in comps}
            extra = [f"C{i}" for i in range(1, 2 * k + 1) if f"C{i}" not in taken]
            comps += [ComponentSpec(name) for name in extra[:k - len(comps)]]
        elif k is not None and k != len(comps):
            raise CLIError(f"-k {k} does not match the {len(comps)} seeded component(s); leave "
                           "-k out" + (" or give a larger -k to add unseeded components."
                                       if mode == "seeded-nmf" else "."))
        overrides.update(components=comps, n_components=None)
    else:
        k = args.k if args.k is not None else cfg.n_components
        if k is None:
            raise CLIError(f"--mode {mode} needs the number of components: pass -k N.")
        overrides.update(n_components=k)
    if unit is not None:
        overrides["spectral_unit"] = unit
    return cfg.replace(**overrides), values, labels


def _check_negative(data, mode, policy, path):
    from .core import MODES

    if not MODES[mode].non_negative or policy != "raise":
        return
    lo = float(np.min(data))
    if lo < 0:
        n_neg = int((np.asarray(data) < 0).sum())
        raise CLIError(
            f"{path} holds {n_neg} negative value(s) (minimum {lo:.6g}), but --mode {mode} "
            "needs non-negative data. Pass --negative clip (negative values become 0) or "
            "--negative offset (all data shifted up by the minimum); the choice is recorded "
            "in result.json.")


def _precheck(cfg, shape):
    """Check what the core would refuse only after a long setup (k, solver names)."""
    from .core._validation import check_n_components
    from .core.solvers import pick_nmf_solver, pick_nnls_solver

    k = cfg.n_components if cfg.n_components is not None else len(cfg.components)
    if cfg.mode != "nnls":  # fixed-H NNLS takes as many spectra as it is given
        check_n_components(k, *shape, mode=cfg.mode)
    if cfg.mode in ("nmf", "seeded-nmf"):
        pick_nmf_solver(cfg.solver, cfg.backend)
    elif cfg.mode == "nnls":
        pick_nnls_solver(cfg.solver, cfg.backend)
    return k


def _prepare_out(out) -> Path:
    """Create the output folder before any long computation, or say why it cannot be."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file; give a folder (it is created if missing).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create the output folder {out}: {exc.strerror or exc}.") \
            from None
    return out


def _describe(res) -> str:
    s = res.summary
    solver = s.get("solver") or s.get("algorithm")
    what = f"{res.mode} {solver}/{res.backend}" if solver else f"{res.mode}"
    return f"{what} on {res.device}"


def cmd_run(args) -> int:
    from .core.analysis import run_analysis
    from .core.colors import default_colors

    quiet = args.quiet
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise CLIError(f"--out {args.out} is a file; give a folder (it is created if missing).")
    stack = _load_stack(Path(args.input), args.spectral_axis)
    for n in stack.notes:
        _note(n.replace("pass spectral_axis", "pass --spectral-axis"), quiet)
    data = stack.data
    axis = stack.spectral_axis
    n_channels = data.shape[axis]
    spatial_shape = tuple(s for i, s in enumerate(data.shape) if i != axis)
    n_pixels = int(np.prod(spatial_shape))
    cfg, values, labels = _analysis_config(args, stack, n_channels, spatial_shape)
    mode = cfg.mode
    _check_negative(data, mode, cfg.negative, args.input)
    k = _precheck(cfg, (n_pixels, n_channels))
    _prepare_out(args.out)  # before the fit: a bad --out must not cost a long run

    _say(f"{PROG} run: {mode} with k={k} on {Path(args.input).name} "
         f"({n_pixels} pixels x {n_channels} channels, spatial shape {spatial_shape})",
         quiet=quiet)
    progress = _Progress(f"{mode}", _progress_enabled(args))
    t0 = time.perf_counter()
    try:
        res, warned = _run_quietly(run_analysis, data, cfg, spectral_axis=axis,
                                   spectral_values=values, labels=labels, callback=progress)
    finally:
        progress.close()
    elapsed = time.perf_counter() - t0
    for w in warned:
        print(f"{PROG}: warning: {w}", file=sys.stderr, flush=True)
    for rep in res.summary.get("seeds", {}).get("components", []) or []:
        if isinstance(rep, dict) and rep.get("fallback"):
            _note(f"component {rep.get('name')!r}: {rep.get('fallback')}", quiet)
    extra = {
        "input": {"path": str(Path(args.input).resolve()),
                  "spectral_axis_index": axis,
                  "spectral_axis_guessed": stack.guessed, "shape": list(data.shape),
                  "dtype": str(data.dtype), "notes": stack.notes},
        "config_file": None if args.config is None else str(Path(args.config).resolve()),
        "spectra_file": None if args.spectra is None else str(Path(args.spectra).resolve()),
        "labels_file": None if args.labels is None else str(Path(args.labels).resolve()),
        "warnings": warned,
        "wall_time_s": elapsed,
    }
    colors = [c.color for c in cfg.components] if cfg.components else []
    colors = [c or d for c, d in zip(colors, default_colors(len(colors)), strict=True)] or None
    files = _write_outputs(args.out, res, spatial_shape, colors=colors, extra=extra)
    rel = res.summary.get("relative_error")
    seed = res.params.get("random_state")
    iters = f", {res.n_iter} iteration(s)" if res.n_iter or mode.endswith("nmf") else ""
    _say(f"done: {_describe(res)}{iters}, {elapsed:.2f} s"
         + (f", relative error {rel:.4g}" if rel is not None else "")
         + (f", random_state {seed}" if seed is not None else ""), quiet=quiet)
    _say(f"wrote {', '.join(files)} to {Path(args.out)}", quiet=quiet)
    return 0


def _write_outputs(out_dir, res, spatial_shape, *, colors=None, extra=None) -> list[str]:
    from .io import write_analysis_outputs

    files = write_analysis_outputs(out_dir, res, spatial_shape, colors=colors, extra=extra)
    names = []
    for key in ("maps", "spectra", "composite", "json", "bundle"):
        v = files.get(key)
        if isinstance(v, list):
            if len(v) == 1:
                names.append(v[0].name)
            elif v:
                names.append(f"{len(v)} x composite_z*.png")
        elif v is not None:
            names.append(v.name)
    return names


# -- demo -------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    """The ``demo`` command (:mod:`napari_unmix._demo`)."""
    from ._demo import run_demo

    return run_demo(args)


# -- argument parsing -------------------------------------------------------------------

def _number(cast, minimum, noun, bound):
    """An argparse type: ``cast(text)``, finite and at least ``minimum``."""
    def convert(text):
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not np.isfinite(v) or v < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound}")
        return v
    return convert


_positive_int = _number(int, 1, "an integer", "at least 1")
_nonneg_int = _number(int, 0, "an integer", ">= 0")
_nonneg_float = _number(float, 0.0, "a number", "a finite number >= 0")


def _add_common(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show a progress bar (default: only on a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="never show a progress bar")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors and warnings only")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of an error instead of one line")


def build_parser() -> argparse.ArgumentParser:
    from .core import MODES
    from .core.preprocess import NEGATIVE_POLICIES

    modes, solvers, backends = _choices()
    parser = argparse.ArgumentParser(
        prog=PROG, description="Spectral unmixing of hyperspectral microscopy stacks "
        "(PCA, NNMF, fixed-H NNLS), without napari.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    mode_help = "; ".join(f"{m}: {MODES[m].question}" for m in modes)
    run = sub.add_parser(
        "run", help="unmix one stack and write maps, spectra, composite and result files",
        description="Unmix one stack (TIFF, .npy, .npz or a folder of TIFF slices). Writes "
        "maps.tif, spectra.csv, composite.png, result.json and result.npz into --out.")
    run.add_argument("input", metavar="INPUT",
                     help="stack: .tif/.tiff (ImageJ, OME), .npy, .npz or a folder of slices")
    run.add_argument("--mode", default=None, choices=modes,
                     help=mode_help + " (default: the mode of --config)")
    run.add_argument("-k", "--n-components", dest="k", type=_positive_int, default=None,
                     metavar="N", help="number of components (with --spectra: the number of "
                     "spectra, may be left out)")
    run.add_argument("--spectra", metavar="CSV", default=None,
                     help="trusted spectra for nnls, seed spectra for seeded-nmf: first column "
                     "the spectral axis (ascending or descending), one column per spectrum; "
                     "resampled onto the stack's spectral axis when it is known")
    run.add_argument("--labels", metavar="LABELS", default=None,
                     help="label image (.tif or .npy, the stack's spatial shape): one seeded "
                     "component per label id, seeded with the mean spectrum of its pixels; "
                     "with --config, the label image its label-id seeds refer to")
    run.add_argument("--flat-background", action="store_true", default=None,
                     help="seeded-nmf / nnls: add a component 'background' with a flat, "
                     "locked spectrum for a non-resonant background or offset present in "
                     "every pixel; in seeded-nmf it also takes the offsets of the other "
                     "fitted spectra (W H unchanged)")
    run.add_argument("--config", metavar="FILE", default=None,
                     help="an AnalysisConfig JSON file (e.g. params['config'] of an earlier "
                     "result); options given on the command line override it")
    run.add_argument("--out", required=True, metavar="DIR", help="output folder")
    run.add_argument("--spectral-axis", type=int, default=None, metavar="I",
                     help="index of the spectral axis of the stack (default: from the file's "
                     "metadata, else axis 0)")
    run.add_argument("--solver", choices=solvers, default=None,
                     help="algorithm (nmf: " + ", ".join(sorted({k[0] for k in _nmf()}))
                     + "; nnls: " + ", ".join(sorted({k[0] for k in _nnls()})) + "); default auto")
    run.add_argument("--backend", choices=backends, default=None,
                     help="implementation (" + ", ".join(backends[1:]) + "); default auto")
    run.add_argument("--device", default=None, metavar="DEV",
                     help="torch device for torch backends: auto (CUDA when available), cpu, "
                     "cuda, cuda:1 ...")
    run.add_argument("--tol", type=_nonneg_float, default=None,
                     help="stopping tolerance (default 1e-4)")
    run.add_argument("--max-iter", type=_positive_int, default=None, metavar="N",
                     help="iteration cap (default 1000)")
    run.add_argument("--random-state", type=_nonneg_int, default=None, metavar="SEED",
                     help="seed of the NNMF initialisation (default: drawn, and recorded)")
    run.add_argument("--negative", choices=NEGATIVE_POLICIES, default=None,
                     help="negative data values: raise (default), clip to 0, or offset all "
                     "data by the minimum")
    _add_common(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo", help="run every mode on the bundled synthetic sample and score it",
        description="Build the synthetic CRS sample (lipid, protein, water, background), run "
        "every available mode and implementation on it, write their outputs and print how "
        "well each recovered the ground truth.")
    demo.add_argument("--out", default="unmix-demo", metavar="DIR",
                      help="output folder (default ./unmix-demo)")
    demo.add_argument("--size", type=_positive_int, default=128, metavar="N",
                      help="image size N x N (default 128)")
    demo.add_argument("--channels", type=_positive_int, default=64, metavar="C",
                      help="number of spectral channels (default 64)")
    demo.add_argument("--noise", type=_nonneg_float, default=0.01,
                      help="noise level relative to the stack maximum (default 0.01)")
    demo.add_argument("--random-state", type=_nonneg_int, default=0, metavar="SEED",
                      help="seed of the sample and of the NNMF initialisations (default 0)")
    demo.add_argument("--max-iter", type=_positive_int, default=1000, metavar="N",
                      help="iteration cap of the iterative solvers (default 1000)")
    _add_common(demo)
    demo.set_defaults(func=cmd_demo)
    return parser


def _nmf():
    from .core import NMF_SOLVERS

    return NMF_SOLVERS


def _nnls():
    from .core import NNLS_SOLVERS

    return NNLS_SOLVERS


def main(argv=None) -> int:
    """Entry point of the ``napari-unmix`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error (already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    from .core import Cancelled

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted.", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, OSError, ImportError, Cancelled) as exc:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr, flush=True)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
