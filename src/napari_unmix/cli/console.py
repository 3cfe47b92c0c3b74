"""What the ``napari-unmix`` command prints: messages, the progress bar, warnings.

Every command of the CLI talks to the user through these helpers, so that all
messages look alike:

* :func:`say` -- a line on stdout (left out with ``--quiet``);
* :func:`note` and :func:`warning` -- ``napari-unmix: note: ...`` and
  ``napari-unmix: warning: ...`` on stderr, always on one line;
* :class:`Progress` -- a tqdm bar on stderr driven by the core's
  ``callback(ProgressInfo)``, and :func:`progress_enabled`, whether to show it;
* :func:`run_quietly` -- run a core function and collect its Python warnings as
  messages instead of letting Python print them.

Bad input is raised as :class:`CLIError`; :func:`napari_unmix.cli.main.main` prints
it as one line ``napari-unmix: error: ...`` and returns :data:`EXIT_USAGE`.
"""

from __future__ import annotations

import re
import sys
import warnings

from ..core._validation import NONFINITE_REMEDY
from ..core.data import COMPUTE_FIRST, OMIT_NEEDS_MEMORY
from ..core.sources.regions import EVERY_PLANE_REMEDY

__all__ = ["CLI_PATTERNS", "CLI_WORDS", "EXIT_USAGE", "ITERATION_STAGES", "PROG", "CLIError",
           "Progress", "cli_words", "note", "one_line", "progress_enabled", "run_quietly", "say",
           "warning"]

#: The command's name, the prefix of every message.
PROG = "napari-unmix"
#: Exit status of bad input or options.
EXIT_USAGE = 2
#: Progress stages of the core (``ProgressInfo.stage``) that count solver iterations;
#: the other stages count steps (PCA, seeds) or pixel chunks (NNLS).
ITERATION_STAGES = frozenset({"nmf"})


class CLIError(Exception):
    """Bad input or options: reported as one line, exit status 2."""


def one_line(msg) -> str:
    """``msg`` as text on one line (runs of white space become one space).

    Parameters
    ----------
    msg : object
        A message, an exception or a warning.

    Returns
    -------
    str
    """
    return " ".join(str(msg).split())


#: The core's words for an option -> the command line's (messages say what to type).
CLI_WORDS = (
    ("anchor=0", "--anchor 0"),
    ("abundance='free'", "--abundance free"),
    ("abundance='sum-to-one'", "--abundance sum-to-one"),
    ("abundance='sum-le-one'", "--abundance sum-le-one"),
    ("loss='frobenius'", "--loss frobenius"),
    ("loss='poisson'", "--loss poisson"),
    ("negative='clip'", "--negative clip"),
    ("negative='offset'", "--negative offset"),
    ("pass spectral_axis", "pass --spectral-axis"),
    ("Raise max_iter", "Raise --max-iter"),
    ("choose backend='torch' (or 'auto'), or device='auto'",
     "choose --backend torch (or auto), or --device auto"),
    ("Use device='cpu' or 'auto'", "Use --device cpu or auto"),
    ("loosen tol", "loosen --tol"),
    ("nan_policy='omit'", "--nan-policy omit"),
    (OMIT_NEEDS_MEMORY, "a stack read into memory, not of a zarr stack, which is read chunk "
     "by chunk: save it as a TIFF or .npy file, or replace its NaN values."),
    (NONFINITE_REMEDY, "The CLI does not drop pixels on its own: replace them (or crop "
     "them away) and run again."),
    (COMPUTE_FIRST, "give the stack as a TIFF or .npy file, which is read into memory"),
    ("switch preprocessing off for a dask stack", "remove the preprocessing from the "
     "--config file for a zarr stack"),
    # seeds of a z / t series (core.series.seeds_for_strategy, the sources' on_plane /
    # on_every_plane)
    ("reference=<plane index>", "--reference N"),
    ("Choose a plane the ROI is on, or draw the ROI on plane",
     "Give --reference N with N a plane the ROI is on, or a mask with pixels on plane"),
    ("Choose a plane the label is on,", "Give --reference N with N a plane the label is on,"),
    (EVERY_PLANE_REMEDY,
     "Give a mask that is the same on every plane (or one plane's mask), or --labels "
     "painted on every plane, or pass --strategy shared-basis --reference N."),
    ("or fit a shared basis on one plane.",
     "or pass --strategy shared-basis --reference N."),
    ("; read it with napari_unmix.io.read_result_bundle (or open it in napari)",
     "; give the stack it was made from (the result itself opens in napari, and --config "
     "takes it to rerun its analysis)"),
)


#: Patterns of the core's words -> the command line's (:func:`re.sub`): option names
#: with a value, and option names that open a message about that option.
CLI_PATTERNS = (
    (r"\bseries=(\d+|N)\b", r"--series \1"),
    (r"^random_state must", "--random-state must"),
    (r"^device=(?=')", "--device "),
    (r"\bbackend='([\w-]+)' runs", r"--backend \1 runs"),
    (r"\(mode='([\w-]+)'\)", r"(--mode \1)"),
    (r"\bn_components=(\d+)", r"-k \1"),
    (r"\bReduce n_components\b", "Reduce -k"),
    (r"^spectral_axis=(-?\d+)", r"--spectral-axis \1"),
    (r"^k=(\d+) candidates asked for", r"-k \1 asks for \1 candidates"),
    (r"^stack contains (\d+) NaN", r"the stack holds \1 NaN"),
    (r"\bmax_iter=(\d+)", r"--max-iter \1"),
    (r"\btol=(\d(?:[\d.eE+-]*\d)?)", r"--tol \1"),
    (r"\b(solver|backend|device|abundance|loss|strategy|reference)='([\w-]+)'", r"--\1 \2"),
)


def cli_words(msg: str) -> str:
    """``msg`` with the core's option names replaced by the flags (:data:`CLI_WORDS`,
    :data:`CLI_PATTERNS`).

    Parameters
    ----------
    msg : str

    Returns
    -------
    str
    """
    for core, flag in CLI_WORDS:
        msg = msg.replace(core, flag)
    for pattern, flag in CLI_PATTERNS:
        msg = re.sub(pattern, flag, msg)
    return msg


def say(msg, *, quiet: bool = False, file=None) -> None:
    """Print ``msg`` (on stdout unless ``file`` is given), unless ``quiet``.

    Parameters
    ----------
    msg : str
    quiet : bool, default False
        ``--quiet``: print nothing.
    file : file object, optional
        Where to print (default ``sys.stdout``).
    """
    if not quiet:
        print(msg, file=file or sys.stdout, flush=True)


def note(msg, quiet: bool = False) -> None:
    """Print ``napari-unmix: note: msg`` on one line on stderr, unless ``quiet``.

    Parameters
    ----------
    msg : object
    quiet : bool, default False
    """
    if not quiet:
        print(f"{PROG}: note: {cli_words(one_line(msg))}", file=sys.stderr, flush=True)


def warning(msg) -> None:
    """Print ``napari-unmix: warning: msg`` on one line on stderr (also with ``--quiet``).

    Parameters
    ----------
    msg : object
    """
    print(f"{PROG}: warning: {cli_words(one_line(msg))}", file=sys.stderr, flush=True)


class Progress:
    """A tqdm bar on stderr driven by the core ``callback(ProgressInfo)``.

    Pass the instance as ``callback=`` to a core function and call :meth:`close`
    when it returns.  The bar is created at the first report, so nothing is shown
    for a run that reports no progress.

    Parameters
    ----------
    desc : str
        Text in front of the bar.
    enabled : bool
        Show the bar (see :func:`progress_enabled`); when False every report is
        ignored.
    """

    def __init__(self, desc: str, enabled: bool):
        self.desc = desc
        self.enabled = enabled
        self.bar = None

    def __call__(self, info) -> None:
        """Show one :class:`~napari_unmix.core.progress.ProgressInfo` (never cancels).

        A z / t series' :class:`~napari_unmix.core.series.SeriesProgressInfo` (it has
        ``n_planes``) drives one bar over the whole series, in per cent, with the plane
        that runs beside it.
        """
        if not self.enabled:
            return None
        n_planes = int(getattr(info, "n_planes", 0) or 0)
        if self.bar is None:
            from tqdm import tqdm

            unit = "%" if n_planes else "it" if info.stage in ITERATION_STAGES else "step"
            self.bar = tqdm(total=info.max_iter, desc=self.desc, unit=unit, leave=False,
                            file=sys.stderr, dynamic_ncols=True)
        if n_planes:
            self.bar.total, self.bar.n = 100, int(round(100 * float(info.fraction)))
            where = ("shared basis" if info.plane is None else
                     f"plane {info.plane + 1}/{n_planes}")
            text = f"{where}, {info.stage} {info.iteration}/{info.max_iter}"
        else:
            self.bar.total, self.bar.n = info.max_iter, info.iteration
            text = ""
        if info.error is not None:
            text += f"{', ' if text else ''}error {info.error:.4g}"
        if text:
            self.bar.set_postfix_str(text, refresh=False)
        self.bar.refresh()
        return None

    def close(self) -> None:
        """Remove the bar (it is not left on the terminal)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_enabled(args) -> bool:
    """Whether to show a progress bar: ``--progress`` / ``--no-progress``, else on a terminal.

    Parameters
    ----------
    args : argparse.Namespace
        With ``progress`` (True, False or None) and ``quiet``.

    Returns
    -------
    bool
    """
    if args.progress is not None:
        return args.progress
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not args.quiet


def run_quietly(func, *args, **kwargs):
    """Call ``func`` and collect the warnings it emits instead of printing them.

    Parameters
    ----------
    func : callable
    *args, **kwargs
        Passed to ``func``.

    Returns
    -------
    value : object
        What ``func`` returned.
    messages : list of str
        Its warnings' messages, each on one line, without repeats, in order.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = func(*args, **kwargs)
    seen, messages = set(), []
    for w in caught:
        msg = one_line(w.message)
        if msg not in seen:
            seen.add(msg)
            messages.append(msg)
    return value, messages
