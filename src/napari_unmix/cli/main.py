"""The ``napari-unmix`` command line: argument parsing and the entry point.

:func:`build_parser` builds the parser of the two commands, ``run``
(:mod:`napari_unmix.cli.run`) and ``demo`` (:mod:`napari_unmix.cli.demo`);
:func:`main` parses, runs the command and turns bad input into one line
``napari-unmix: error: ...`` on stderr and exit status 2 (``--debug`` shows the
traceback instead).

The ``--mode`` choices come from :data:`napari_unmix.core.MODES` and the ``--solver``
/ ``--backend`` choices from the modes' solver tables, read when the parser is built:
a mode registered with :func:`~napari_unmix.core.modes.register_mode` (or a solver
added to a table) appears here without changes to this module.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .. import __version__
from ..core import MODES, Cancelled
from ..core.data import NAN_POLICIES, NEGATIVE_POLICIES
from ..core.parallel import check_n_jobs
from ..core.solvers import ABUNDANCES, LOSSES
from ..io.result_folder import MAPS_FORMATS
from .console import EXIT_USAGE, PROG, CLIError, cli_words, one_line
from .demo import cmd_demo
from .run import cmd_run
from .series import add_series_options
from .suggest import add_suggest_commands

__all__ = ["backend_choices", "build_parser", "main", "mode_choices", "solver_choices"]


def mode_choices() -> list[str]:
    """The ``--mode`` choices: the registered modes, in menu order."""
    return list(MODES)


def solver_choices() -> list[str]:
    """The ``--solver`` choices: ``"auto"`` and every solver of the modes' tables."""
    return ["auto", *sorted({name for spec in MODES.values() for name in spec.solver_names()})]


def backend_choices() -> list[str]:
    """The ``--backend`` choices: ``"auto"`` and every backend of the modes' tables.

    Backends that need a missing library (torch) are listed too: choosing one gives
    the core's message on how to install it.
    """
    return ["auto", *sorted({key[1] for spec in MODES.values() for key in spec.solvers or {}})]


def _solver_help() -> str:
    """``--solver`` help: the solvers of each table, with the modes that use it."""
    groups: dict[int, tuple[list[str], list[str]]] = {}
    for name, spec in MODES.items():
        if spec.solvers:
            groups.setdefault(id(spec.solvers), ([], spec.solver_names()))[0].append(name)
    parts = [f"{', '.join(modes)}: {', '.join(names)}" for modes, names in groups.values()]
    return "algorithm (" + "; ".join(parts) + "); default auto"


def _spectra_help() -> str:
    """``--spectra`` help: what the spectra are to each seeded mode."""
    fixed = [n for n, s in MODES.items() if s.seeded and s.fixed_spectra]
    refined = [n for n, s in MODES.items() if s.seeded and not s.fixed_spectra]
    uses = ([f"trusted spectra for {', '.join(fixed)}"] if fixed else []) + \
        ([f"seed spectra for {', '.join(refined)}"] if refined else [])
    return (", ".join(uses) + ": first column the spectral axis (ascending or descending), "
            "one column per spectrum; resampled onto the stack's spectral axis when it is "
            "known")


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


def trust(text):
    """An argparse type for ``--anchor``: a number >= 0, or ``inf``."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if np.isnan(v) or v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0, or inf")
    return v


def n_jobs(text):
    """An argparse type for ``--n-jobs``: a positive integer or -1 (``core.parallel``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    try:
        return check_n_jobs(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("n_jobs", "--n-jobs")
                                         .replace(" / None", "")) from None


positive_int = _number(int, 1, "an integer", "at least 1")
nonneg_int = _number(int, 0, "an integer", ">= 0")
nonneg_float = _number(float, 0.0, "a number", "a finite number >= 0")


def _add_common(p) -> None:
    """The options of every command: progress bar, ``--quiet``, ``--debug``."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="always show a progress bar (default: only on a terminal)")
    g.add_argument("--no-progress", dest="progress", action="store_false",
                   help="never show a progress bar")
    p.add_argument("-q", "--quiet", action="store_true", help="print errors and warnings only")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of an error instead of one line")


def _add_run(sub) -> None:
    """The ``run`` command and its options."""
    modes, solvers, backends = mode_choices(), solver_choices(), backend_choices()
    seeded = " / ".join(n for n, s in MODES.items() if s.seeded)
    refined = " / ".join(n for n, s in MODES.items() if s.seeded and not s.fixed_spectra)
    mode_help = "; ".join(f"{m}: {MODES[m].question}" for m in modes)
    run = sub.add_parser(
        "run", help="unmix one stack and write maps, spectra, composite and result files",
        description="Unmix one stack (TIFF, .npy, .npz, zarr / OME-Zarr or a folder of "
        "TIFF slices; zarr inputs are computed chunk by chunk with dask). Writes "
        "maps.tif, spectra.csv, composite.png, config.json, result.json and result.npz "
        "into --out, as a whole: a new or empty folder, or an earlier result folder, "
        "which is replaced. A z / t series, e.g. (Z, C, Y, X), is fitted as one volume, or "
        "plane by plane with --strategy shared-basis / per-slice (spectra_zNNN.csv per "
        "plane for per-slice).")
    run.add_argument("input", metavar="INPUT",
                     help="stack: .tif/.tiff (ImageJ, OME), .lsm (Zeiss), .npy, .npz, .zarr "
                     "(zarr, OME-Zarr) or a folder of slices")
    run.add_argument("--mode", default=None, choices=modes,
                     help=mode_help + " (default: the mode of --config)")
    run.add_argument("-k", "--n-components", dest="k", type=positive_int, default=None,
                     metavar="N", help="number of components (with --spectra: the number of "
                     "spectra, may be left out)")
    run.add_argument("--spectra", metavar="CSV", default=None, help=_spectra_help())
    run.add_argument("--labels", metavar="LABELS", default=None,
                     help="label image (.tif, .npy, or an OME-Zarr label image such as "
                     "img.ome.zarr/labels/cells; the stack's spatial shape, or one plane's "
                     "with --strategy shared-basis / per-slice): one seeded "
                     "component per label id, seeded with the mean spectrum of its pixels; "
                     "with --config, the label image its label-id seeds refer to")
    run.add_argument("--flat-background", action="store_true", default=None,
                     help=f"{seeded}: add a component 'background' with a flat, "
                     "locked spectrum for a non-resonant background or offset present in "
                     f"every pixel; in {refined} it also takes the offsets of the other "
                     "fitted spectra (W H unchanged)")
    run.add_argument("--config", metavar="FILE", default=None,
                     help="the analysis of an earlier run: its config.json, its result "
                     "folder or result.npz, or an AnalysisConfig JSON file; options given on "
                     "the command line override it")
    run.add_argument("--new-labels", action="store_true", default=False,
                     help="with --config from a result: run with a --labels image other than "
                     "the one that result was made with (refused otherwise)")
    run.add_argument("--out", required=True, metavar="DIR", help="output folder")
    run.add_argument("--out-format", choices=MAPS_FORMATS, default="tiff",
                     help="the maps: tiff (maps.tif, ImageJ; the default) or ome-zarr (the "
                     "--out folder is itself a chunked, multiscale OME-Zarr image of the "
                     "maps, e.g. --out maps.ome.zarr, with the other files beside)")
    run.add_argument("--scheduler", default=None, metavar="local|ADDRESS",
                     help="compute on dask.distributed: local (a cluster of worker "
                     "processes on this machine) or a scheduler address (tcp://host:8786); "
                     "default: threads in this process. Needs napari-unmix[distributed]")
    run.add_argument("--spectral-axis", type=int, default=None, metavar="I",
                     help="index of the spectral axis of the stack (default: from the file's "
                     "metadata, else axis 0)")
    run.add_argument("--series", type=nonneg_int, default=None, metavar="N",
                     help="TIFF: the image series to read (default 0; a note lists the series "
                     "of a file that has several)")
    add_series_options(run)
    run.add_argument("--solver", choices=solvers, default=None, help=_solver_help())
    run.add_argument("--backend", choices=backends, default=None,
                     help="implementation (" + ", ".join(backends[1:]) + "); default auto")
    run.add_argument("--device", default=None, metavar="DEV",
                     help="torch device for torch backends: auto (CUDA when available), cpu, "
                     "cuda, cuda:1 ...")
    run.add_argument("--tol", type=nonneg_float, default=None,
                     help="stopping tolerance (default 1e-4)")
    run.add_argument("--max-iter", type=positive_int, default=None, metavar="N",
                     help="iteration cap (default 1000)")
    run.add_argument("--random-state", type=nonneg_int, default=None, metavar="SEED",
                     help="seed of the NNMF initialisation (default: drawn, and recorded)")
    run.add_argument("--negative", choices=NEGATIVE_POLICIES, default=None,
                     help="negative data values: raise (default), clip to 0, or offset all "
                     "data by the minimum")
    run.add_argument("--nan-policy", choices=NAN_POLICIES, default=None,
                     help="pixels with NaN or infinite values (padding of a stitched or "
                     "registered image): raise (default: refuse the stack) or omit (leave "
                     "them out of the fit and the seeds; their maps are NaN, and the count "
                     "is recorded in result.json); in-memory stacks, not zarr")
    run.add_argument("--anchor", type=trust, default=None, metavar="TRUST",
                     help="seeded-nmf: trust in the seed spectra, how strongly each is pulled "
                     "towards its seed (0: free fit, 1: the seed weighs as much as the data, "
                     "the default; inf: locked); Gaussian models count a tenth of it")
    run.add_argument("--abundance", choices=ABUNDANCES, default=None,
                     help=" / ".join(n for n, s in MODES.items() if s.uses("abundance"))
                     + ": the abundance model, free (default: only >= 0), sum-to-one (each "
                     "pixel's abundances are fractions that sum to one: fully constrained "
                     "least squares) or sum-le-one (they sum to at most one: a pixel may "
                     "hold less than everything)")
    run.add_argument("--loss", choices=list(LOSSES), default=None,
                     help=" / ".join(n for n, s in MODES.items() if s.uses("loss"))
                     + ": the loss the fit minimises, frobenius (least squares, the "
                     "default) or poisson (the Poisson likelihood of photon counts, for "
                     "fluorescence and low-count Raman data; the result then holds the "
                     "deviance per pixel)")
    run.add_argument("--n-jobs", type=n_jobs, default=None, metavar="N",
                     help="worker threads that share the pixels on the CPU (default: every "
                     "core this process may use; -1 the same); the result does not depend "
                     "on it")
    _add_common(run)
    run.set_defaults(func=cmd_run)


def _add_demo(sub) -> None:
    """The ``demo`` command and its options."""
    demo = sub.add_parser(
        "demo", help="run every mode on the bundled synthetic sample and score it",
        description="Build the synthetic CRS sample (lipid, protein, water, background), run "
        "every available mode and implementation on it, write their outputs and print how "
        "well each recovered the ground truth.")
    demo.add_argument("--out", default="unmix-demo", metavar="DIR",
                      help="output folder (default ./unmix-demo)")
    demo.add_argument("--size", type=_number(int, 8, "an integer", "at least 8"), default=128,
                      metavar="N", help="image size N x N (default 128, at least 8)")
    demo.add_argument("--channels", type=_number(int, 4, "an integer", "at least 4"),
                      default=64, metavar="C",
                      help="number of spectral channels (default 64, at least 4)")
    demo.add_argument("--noise", type=nonneg_float, default=0.01,
                      help="noise level relative to the stack maximum (default 0.01)")
    demo.add_argument("--random-state", type=nonneg_int, default=0, metavar="SEED",
                      help="seed of the sample and of the NNMF initialisations (default 0)")
    demo.add_argument("--max-iter", type=positive_int, default=1000, metavar="N",
                      help="iteration cap of the iterative solvers (default 1000)")
    demo.add_argument("--negative", choices=NEGATIVE_POLICIES, default="clip",
                      help="negative values of the noisy sample (dim pixels at a high "
                      "--noise): clip to 0 (default, noted and recorded), offset all data by "
                      "the minimum, or raise (refuse them, as 'run' does by default)")
    _add_common(demo)
    demo.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``napari-unmix`` command (modes and solvers read from the tables now).

    Returns
    -------
    argparse.ArgumentParser
        Each command's namespace has ``func``, the function that runs it.
    """
    parser = argparse.ArgumentParser(
        prog=PROG, description="Spectral unmixing of hyperspectral microscopy stacks "
        "(PCA, NNMF, fixed-H NNLS), without napari.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_run(sub)
    _add_demo(sub)
    add_suggest_commands(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``napari-unmix`` command; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for bad input or options (one line on stderr), 130 when
        interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error (already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted.", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, OSError, ImportError, Cancelled) as exc:
        if args.debug:
            raise
        print(f"{PROG}: error: {cli_words(one_line(exc))}", file=sys.stderr, flush=True)
        return EXIT_USAGE
