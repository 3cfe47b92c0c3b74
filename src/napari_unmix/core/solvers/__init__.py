"""The solver tables: every NNMF and NNLS implementation, registered once.

``core.nmf`` and ``core.nnls`` look solvers up here; the CLI and the napari dock
list their choices from here, so a solver added to a table appears everywhere
without further code.  Each entry is a pure function (see ``_common``).

Losses.  A fit minimises one of the :data:`LOSSES`: ``"frobenius"`` (least
squares, the default) or ``"poisson"`` (the generalised Kullback-Leibler
divergence, the Poisson likelihood of photon counts; see ``kl``).  Every entry says
which losses it fits (:attr:`SolverSpec.losses`) and its function takes the loss to
fit as the keyword ``loss`` (those that fit least squares only ignore it);
:func:`pick_nmf_solver` / :func:`pick_nnls_solver` choose among the entries that fit
the loss asked for (``"auto"`` by a preference order of its own) and refuse a named
solver that cannot, saying which can.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..device import cuda_available, torch_available
from .active_set import fit_nnls_active_set_numpy, fit_nnls_active_set_torch
from .hals import fit_hals_numpy
from .hals_torch import fit_hals_torch
from .kl import fit_nnls_kl_numpy, fit_nnls_kl_torch
from .mu import fit_mu_numpy, fit_mu_torch
from .scipy_nnls import fit_nnls_scipy
from .simplex import ABUNDANCES, check_abundance
from .simplex_nmf import fit_fcls_hals
from .sklearn_nmf import fit_sklearn
from .torch_fista import fit_nnls_fista

__all__ = ["ABUNDANCES", "LOSSES", "NMF_SOLVERS", "NNLS_SOLVERS", "SolverSpec", "check_loss",
           "pick_nmf_solver", "pick_nnls_solver", "solve_nnls"]

#: Every abundance model (``core.solvers.simplex``).
_ALL_ABUNDANCES = frozenset(ABUNDANCES)

#: The losses a fit can minimise: name -> what it is (for menus and ``--help``).
LOSSES = {
    "frobenius": "least squares ||X - WH||_F^2: every channel weighs alike",
    "poisson": "Poisson likelihood of photon counts, the generalised Kullback-Leibler "
               "divergence D(X || WH): a channel weighs by 1 / its expected count",
}
_FROBENIUS = frozenset({"frobenius"})
_POISSON = frozenset({"poisson"})
_BOTH_LOSSES = frozenset(LOSSES)


def check_loss(loss) -> str:
    """``loss`` if it is one of :data:`LOSSES`; a ``ValueError`` naming them otherwise."""
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}; choose one of {', '.join(LOSSES)}.")
    return loss


@dataclass(frozen=True)
class SolverSpec:
    """One registered implementation.

    Attributes
    ----------
    algorithm : str
        Algorithm family (``"mu"``, ``"cd"``, ``"lawson-hanson"``, ``"fista"`` ...).
    backend : str
        Implementation (``"sklearn"``, ``"torch"``, ``"scipy"``, ``"numpy"``).
    func : callable
        The solver function.
    needs_torch : bool
        Only available when torch imports.
    exact : bool
        NNLS only: reaches the KKT optimum (not stopped by a tolerance).
    partial_lock : bool
        NNMF only: can keep a subset of H rows fixed, or anchor them to their seeds.
    cancellable : bool
        Reports progress during the run and honours a cancel request.
    abundance : frozenset of str
        The abundance models it fits (``"free"``, ``"sum-to-one"``, ``"sum-le-one"``,
        see ``core.solvers.simplex``): NNLS, the exact solvers (the sum constraints
        are solved on top of them); NNMF, the solvers whose W steps keep a sum
        constraint.
    summary : str
        One line for menus and ``--help``.
    losses : frozenset of str
        The :data:`LOSSES` it fits; ``func`` gets the one to fit as ``loss=``.
    shares_workers : bool
        NNLS only: ``func`` takes the pool of worker threads (``workers=``, a
        :class:`~napari_unmix.core.parallel.Workers`) and cuts its pixels into blocks
        itself, sharing one set-up over them; the others are called once per work
        block by :func:`solve_nnls`.
    device_input : bool
        NNLS only: ``func`` also takes ``X`` as a torch tensor on its device (a chunk
        :func:`solve_nnls` streamed there, the next copy overlapping this solve).
    scale_exact : bool
        NNMF only: its iterates on ``2**s X`` (from ``W``, ``2**s H``) are exactly
        ``2**s`` times those on ``X``, given ``data_scale=2**s`` for its conventions
        (the scale balance); ``core.nmf`` then fits ``X`` as it is, with no scaled copy
        (``core.data.fits_unscaled``).
    """

    algorithm: str
    backend: str
    func: Callable
    needs_torch: bool = False
    exact: bool = False
    partial_lock: bool = True
    cancellable: bool = True
    abundance: frozenset = frozenset({"free"})
    summary: str = ""
    losses: frozenset = _FROBENIUS
    shares_workers: bool = False
    device_input: bool = False
    scale_exact: bool = False

    def available(self) -> bool:
        """Whether this implementation can run here (torch ones need torch)."""
        return not self.needs_torch or torch_available()


NMF_SOLVERS: dict[tuple[str, str], SolverSpec] = {
    ("hals", "numpy"): SolverSpec(
        "hals", "numpy", fit_hals_numpy, scale_exact=True,
        summary="HALS coordinate descent in numpy (CPU), sampled stopping rule"),
    ("hals", "torch"): SolverSpec(
        "hals", "torch", fit_hals_torch, needs_torch=True, scale_exact=True,
        summary="HALS coordinate descent in PyTorch (CPU or CUDA), sampled stopping rule"),
    ("mu", "numpy"): SolverSpec(
        "mu", "numpy", fit_mu_numpy, losses=_BOTH_LOSSES,
        summary="multiplicative updates in numpy (CPU), sampled stopping rule"),
    ("mu", "torch"): SolverSpec(
        "mu", "torch", fit_mu_torch, needs_torch=True, losses=_BOTH_LOSSES,
        summary="multiplicative updates in PyTorch (CPU or CUDA), sampled stopping rule"),
    ("mu", "sklearn"): SolverSpec(
        "mu", "sklearn", fit_sklearn, partial_lock=False, cancellable=False,
        losses=_BOTH_LOSSES,
        summary="scikit-learn multiplicative updates, scikit-learn's stopping rule"),
    ("cd", "sklearn"): SolverSpec(
        "cd", "sklearn", fit_sklearn, partial_lock=False, cancellable=False,
        summary="scikit-learn coordinate descent, scikit-learn's stopping rule"),
    ("fcls", "numpy"): SolverSpec(
        "fcls", "numpy", fit_fcls_hals, abundance=_ALL_ABUNDANCES,
        summary="exact W steps under the abundance model (FCLS, NNLS) and HALS H steps, "
        "numpy (CPU)"),
}
"""NNMF implementations, keyed by ``(solver, backend)``.

``pick_nmf_solver`` resolves names, ``"auto"`` included, to one of these."""

NNLS_SOLVERS: dict[tuple[str, str], SolverSpec] = {
    ("active-set", "numpy"): SolverSpec(
        "active-set", "numpy", fit_nnls_active_set_numpy, exact=True, abundance=_ALL_ABUNDANCES,
        shares_workers=True,
        summary="vectorised active set (passive-set enumeration / block pivoting), exact"),
    ("active-set", "torch"): SolverSpec(
        "active-set", "torch", fit_nnls_active_set_torch, needs_torch=True, exact=True,
        abundance=_ALL_ABUNDANCES, device_input=True,
        summary="the same exact active-set solver in PyTorch (CPU or CUDA)"),
    ("lawson-hanson", "scipy"): SolverSpec(
        "lawson-hanson", "scipy", fit_nnls_scipy, exact=True, abundance=_ALL_ABUNDANCES,
        summary="SciPy Lawson-Hanson active set, one pixel at a time (exact, slow)"),
    ("fista", "torch"): SolverSpec(
        "fista", "torch", fit_nnls_fista, needs_torch=True, device_input=True,
        summary="projected-gradient FISTA in PyTorch (CPU or CUDA), tolerance-stopped"),
    ("mu", "numpy"): SolverSpec(
        "mu", "numpy", fit_nnls_kl_numpy, losses=_POISSON,
        summary="Poisson loss: EM multiplicative updates in numpy, per-pixel stopping rule"),
    ("mu", "torch"): SolverSpec(
        "mu", "torch", fit_nnls_kl_torch, needs_torch=True, losses=_POISSON,
        summary="Poisson loss: EM multiplicative updates in PyTorch (CPU or CUDA)"),
}
"""Fixed-H NNLS implementations, keyed by ``(solver, backend)``.

``pick_nnls_solver`` resolves names, ``"auto"`` included, to one of these."""

# Preference orders for "auto": the first available entry that matches wins.
# Random NNMF: the fastest solver to a low error (benchmarks/nmf_speed.py).
_NMF_AUTO = {
    "cuda": [("hals", "torch"), ("hals", "numpy"), ("cd", "sklearn")],
    "cpu": [("hals", "numpy"), ("hals", "torch"), ("cd", "sklearn")],
}
# Seeded NNMF: multiplicative updates.  The seeds are there to choose the basin of
# the solution; MU's small multiplicative steps stay in it, where HALS's exact block
# minimisations move far in the first iterations and, on data whose factorisation
# is not unique (overlapping bands, a flat background), end much farther from the
# seeded spectra (benchmarks/real_data.py: Samson, Jasper Ridge).
_NMF_AUTO_SEEDED = {
    "cuda": [("mu", "torch"), ("mu", "numpy"), ("mu", "sklearn")],
    "cpu": [("mu", "numpy"), ("mu", "torch"), ("mu", "sklearn")],
}
# Anchored seeded NNMF (spectra pulled towards their seeds): HALS.  The anchor keeps
# its large block steps in the seeds' basin, and it needs 10-50x fewer iterations
# than MU (benchmarks/seeded_nmf.py).
_NMF_AUTO_ANCHORED = {
    "cuda": [("hals", "torch"), ("hals", "numpy"), ("mu", "torch")],
    "cpu": [("hals", "numpy"), ("hals", "torch"), ("mu", "numpy")],
}
# NNMF under a sum constraint: the solvers that support it (benchmarks/abundance.py).
_NMF_AUTO_ABUNDANCE = {
    "cuda": [("fcls", "numpy")],
    "cpu": [("fcls", "numpy")],
}
_NNLS_AUTO = {   # fastest exact first (benchmarks/nnls_speed.py)
    "cuda": [("active-set", "torch"), ("active-set", "numpy"), ("lawson-hanson", "scipy")],
    "cpu": [("active-set", "numpy"), ("active-set", "torch"), ("lawson-hanson", "scipy")],
}
# The Poisson loss: the multiplicative updates fit it (nothing else), torch first on
# CUDA, numpy on the CPU; for NNMF also in seeded and anchored runs.
_NMF_AUTO_POISSON = {
    "cuda": [("mu", "torch"), ("mu", "numpy"), ("mu", "sklearn")],
    "cpu": [("mu", "numpy"), ("mu", "torch"), ("mu", "sklearn")],
}
_NNLS_AUTO_POISSON = {
    "cuda": [("mu", "torch"), ("mu", "numpy")],
    "cpu": [("mu", "numpy"), ("mu", "torch")],
}


def _check_names(table, solver, backend, what):
    """Refuse a ``solver`` or ``backend`` that is not a name (``None``, a number...)."""
    for part, name, names in (("solver", solver, {k[0] for k in table}),
                              ("backend", backend, {k[1] for k in table})):
        if not isinstance(name, str):
            raise TypeError(f"The {what.split()[0]} {part} must be a name: one of "
                            f"{', '.join(sorted(names))}, or 'auto'; got {name!r}.")


def _known(table, key, what):
    if key not in table:
        choices = ", ".join("/".join(k) for k in table)
        raise ValueError(f"Unknown {what} {'/'.join(key)!r}; choose one of: {choices}, "
                         "or 'auto' for either part.")
    spec = table[key]
    if not spec.available():
        raise ImportError(
            f"The {what} {'/'.join(key)!r} needs PyTorch, which is not installed "
            "(pip install 'napari-unmix[torch]'); choose another or 'auto'."
        )
    return spec


def _pick(table, auto_order, solver, backend, what, accept=lambda spec: True,
          refusal="cannot do what was asked"):
    if solver != "auto" and backend != "auto":
        spec = _known(table, (solver, backend), what)
        if not accept(spec):
            raise ValueError(f"The {what} {solver}/{backend} {refusal}.")
        return spec
    for part, name, names in (("solver", solver, {k[0] for k in table}),
                              ("backend", backend, {k[1] for k in table})):
        if name != "auto" and name not in names:
            raise ValueError(f"Unknown {what.split()[0]} {part} {name!r}; choose one of: "
                             f"{', '.join(sorted(names))}, or 'auto'.")
    place = "cuda" if cuda_available() else "cpu"
    rest = list(table)
    if place == "cuda":  # a named solver on a GPU machine: its torch version first
        rest.sort(key=lambda key: not table[key].needs_torch)
    turned_down = []
    for key in list(auto_order[place]) + rest:
        if solver in ("auto", key[0]) and backend in ("auto", key[1]):
            spec = table[key]
            if spec.available() and accept(spec):
                return spec
            if spec.available() and "/".join(key) not in turned_down:
                turned_down.append("/".join(key))
    if turned_down:           # there are matches; say why they do not fit the request
        raise ValueError(f"The {what} {', '.join(turned_down)} {refusal}.")
    choices = ", ".join("/".join(k) for k in table)
    raise ValueError(
        f"No available {what} matches solver={solver!r}, backend={backend!r}. "
        f"Registered: {choices} (torch ones need PyTorch installed)."
    )


def _check_abundance(table, solver, backend, abundance, what):
    """Refuse a named solver / backend none of whose entries fits ``abundance``."""
    check_abundance(abundance)
    matching = [key for key in table if solver in ("auto", key[0]) and backend in ("auto", key[1])]
    if matching and not any(abundance in table[key].abundance for key in matching):
        able = ", ".join("/".join(key) for key, spec in table.items()
                         if abundance in spec.abundance)
        named = "/".join(part for part in (solver, backend) if part != "auto")
        raise ValueError(f"The {what} {named} cannot fit abundance={abundance!r}; use {able} "
                         "(or 'auto'), or abundance='free'.")


def _check_loss(table, solver, backend, loss, abundance, what):
    """Refuse a loss that no entry fits together with ``abundance``, or a named solver /
    backend none of whose entries fits ``loss`` (naming those that do)."""
    check_loss(loss)
    if not any(loss in s.losses and abundance in s.abundance for s in table.values()):
        raise ValueError(f"No {what} fits loss={loss!r} with abundance={abundance!r}; use "
                         "abundance='free' with this loss, or loss='frobenius'.")
    matching = [key for key in table if solver in ("auto", key[0]) and backend in ("auto", key[1])]
    if matching and not any(loss in table[key].losses for key in matching):
        able = ", ".join("/".join(key) for key, spec in table.items() if loss in spec.losses)
        fits = sorted(set().union(*(table[key].losses for key in matching)))
        named = "/".join(part for part in (solver, backend) if part != "auto")
        raise ValueError(f"The {what} {named} cannot fit loss={loss!r} (it fits "
                         f"{', '.join(f'loss={f!r}' for f in fits)}); use {able} (or "
                         "'auto').")


def pick_nmf_solver(solver: str = "auto", backend: str = "auto", *,
                    partial_lock: bool = False, seeded: bool = False,
                    anchored: bool = False, abundance: str = "free",
                    loss: str = "frobenius") -> SolverSpec:
    """Resolve NNMF ``solver`` / ``backend`` names (either may be ``"auto"``).

    Parameters
    ----------
    solver : str, default "auto"
        Algorithm family of :data:`NMF_SOLVERS` (``"hals"``, ``"mu"``, ``"cd"``) or
        ``"auto"``.
    backend : str, default "auto"
        Implementation (``"numpy"``, ``"torch"``, ``"sklearn"``) or ``"auto"``.
    partial_lock : bool, default False
        Only accept implementations that can keep a subset of the spectra fixed.
    seeded : bool, default False
        Use the preference order for seeded runs (multiplicative updates first, see
        ``_NMF_AUTO_SEEDED``) instead of the one for random starts (HALS first).
    anchored : bool, default False
        The spectra are anchored to their seeds: only accept implementations that
        can anchor rows of H (those that can lock a subset, ``partial_lock``), and
        for a seeded run prefer HALS (``_NMF_AUTO_ANCHORED``).
    abundance : {"free", "sum-to-one", "sum-le-one"}, default "free"
        The abundance model of ``W``: only accept implementations that fit it
        (``SolverSpec.abundance``); under a sum constraint ``"auto"`` takes
        ``fcls/numpy`` (``_NMF_AUTO_ABUNDANCE``).
    loss : {"frobenius", "poisson"}, default "frobenius"
        The loss to fit (:data:`LOSSES`): only accept implementations that fit it
        (``SolverSpec.losses``); for ``"poisson"`` ``"auto"`` takes the
        multiplicative updates (``_NMF_AUTO_POISSON``).

    Returns
    -------
    SolverSpec
        For ``"auto"``, the first available entry of the preference order for this
        machine (CUDA or CPU) that matches the named part, if any.

    Raises
    ------
    ValueError
        Unknown names, or no available entry that matches (the message lists the
        registered ones), or a named solver that cannot fit ``abundance`` or ``loss``.
    ImportError
        A torch implementation named explicitly while torch is not installed.
    """
    _check_names(NMF_SOLVERS, solver, backend, "NNMF solver/backend")
    _check_abundance(NMF_SOLVERS, solver, backend, abundance, "NNMF solver/backend")
    _check_loss(NMF_SOLVERS, solver, backend, loss, abundance, "NNMF solver/backend")
    partial = [f"{a}/{b}" for (a, b), spec in NMF_SOLVERS.items()
               if spec.partial_lock and loss in spec.losses]
    order = (_NMF_AUTO_ABUNDANCE if abundance != "free" else
             _NMF_AUTO_POISSON if loss != "frobenius" else
             _NMF_AUTO_ANCHORED if seeded and anchored else
             _NMF_AUTO_SEEDED if seeded else _NMF_AUTO)
    what = "anchor the spectra to their seeds" if anchored and not partial_lock else \
        "keep a subset of the spectra fixed (locked)"
    return _pick(NMF_SOLVERS, order, solver, backend, "NNMF solver/backend",
                 accept=lambda spec: (spec.partial_lock or not (partial_lock or anchored))
                 and abundance in spec.abundance and loss in spec.losses,
                 refusal=f"cannot {what}; use one of " + ", ".join(partial)
                 + (" (or anchor=0 for a free fit)" if anchored else ""))


def pick_nnls_solver(solver: str = "auto", backend: str = "auto", *,
                     abundance: str = "free", loss: str = "frobenius") -> SolverSpec:
    """Resolve fixed-H NNLS ``solver`` / ``backend`` names (``"auto"``: fastest exact).

    Parameters
    ----------
    solver : str, default "auto"
        Algorithm of :data:`NNLS_SOLVERS` (``"active-set"``, ``"lawson-hanson"``,
        ``"fista"``, ``"mu"``) or ``"auto"``.
    backend : str, default "auto"
        Implementation (``"numpy"``, ``"torch"``, ``"scipy"``) or ``"auto"``.
    abundance : {"free", "sum-to-one", "sum-le-one"}, default "free"
        The abundance model: the sum constraints need an exact solver (they are
        solved on top of its NNLS steps, ``core.solvers.simplex``).
    loss : {"frobenius", "poisson"}, default "frobenius"
        The loss to fit (:data:`LOSSES`): least squares, or the Poisson loss, which
        the EM multiplicative updates (``"mu"``) fit (with free abundances).

    Returns
    -------
    SolverSpec
        For ``"auto"``, the first available entry of the preference order for this
        machine (CUDA or CPU) that matches the named part: for least squares the
        exact active-set solver, for the Poisson loss ``mu``; in torch on CUDA and
        in numpy on the CPU.

    Raises
    ------
    ValueError
        Unknown names, or no available entry that matches, or a named solver that
        cannot fit ``abundance`` or ``loss``.
    ImportError
        A torch implementation named explicitly while torch is not installed.
    """
    _check_names(NNLS_SOLVERS, solver, backend, "NNLS solver/backend")
    _check_abundance(NNLS_SOLVERS, solver, backend, abundance, "NNLS solver/backend")
    _check_loss(NNLS_SOLVERS, solver, backend, loss, abundance, "NNLS solver/backend")
    return _pick(NNLS_SOLVERS, _NNLS_AUTO_POISSON if loss != "frobenius" else _NNLS_AUTO,
                 solver, backend, "NNLS solver/backend",
                 accept=lambda spec: abundance in spec.abundance and loss in spec.losses,
                 refusal=f"cannot fit loss={loss!r}" if loss != "frobenius" else
                 f"cannot fit abundance={abundance!r}")


from .chunked import solve_nnls  # noqa: E402  (the chunked engine uses the table above)
