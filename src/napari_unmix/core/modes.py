"""The table of unmixing modes: the only place that says what a mode does.

A :class:`ModeSpec` owns its mode: the function that runs it, whether it is seeded,
the solver table it picks from and the options (fields of
:class:`~napari_unmix.core.config.AnalysisConfig`) it uses.
:func:`~napari_unmix.core.analysis.run_analysis` dispatches through :data:`MODES`;
the CLI derives its ``--mode`` choices and which options each mode takes from it,
and the dock its mode menu and which settings it shows.  A new mode is one run
function and one :func:`register_mode` call (the built-in modes are registered in
:mod:`napari_unmix.core.mode_runs`).

The run function
    ``run(data, config, seeds, callback) -> UnmixResult`` gets the
    :class:`~napari_unmix.core.data.PreparedData` of the stack (checked once, the
    negative policy applied, preprocessed), the resolved config (a concrete
    ``random_state``), the :class:`~napari_unmix.core.seeds.SeedSet` of a seeded mode
    (``None`` otherwise) and the progress callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["MODES", "SEED_OPTIONS", "SOLVER_OPTIONS", "ModeSpec", "register_mode"]

#: Config fields of every iterative mode's solver.
SOLVER_OPTIONS = frozenset({"solver", "backend", "device", "tol", "max_iter", "negative",
                            "n_jobs"})
#: Config fields of the seeding engine and the preprocessing.
SEED_OPTIONS = frozenset({"components", "w_seed_mode", "overwrite", "h_fallback",
                          "residual_score", "preprocessing", "fit_data"})


@dataclass(frozen=True)
class ModeSpec:
    """One unmixing mode.

    Attributes
    ----------
    name : str
        Identifier used in configs, params, the CLI and files.
    label : str
        Human-readable name (menus, summaries).
    question : str
        The question the mode answers, for help texts.
    run : callable
        ``run(data, config, seeds, callback) -> UnmixResult`` (see the module
        documentation).
    options : frozenset of str
        The :class:`~napari_unmix.core.config.AnalysisConfig` fields the mode uses;
        the CLI refuses the others, the dock hides them.
    seeded : bool
        The mode's components are defined by component specs with seeds, and
        :func:`~napari_unmix.core.seeds.build_seeds` runs before it.
    builds_maps : bool
        Seeded modes: the seeds include maps (``W0``), not only spectra.
    fixed_spectra : bool
        The seed spectra are used as they are (fixed-H NNLS): a fallback spectrum is
        then an emergency stand-in, and the seeds say so.
    non_negative : bool
        Fits non-negative maps and spectra: the negative-value policy applies.
    pick_solver : callable or None
        ``pick_solver(solver, backend, config=None) -> SolverSpec``: resolves the
        config's solver names, for that config when given (e.g. whether its seeds
        are anchored); ``None`` for modes without a solver table (PCA).
    solvers : mapping or None
        The solver table the mode picks from (``NMF_SOLVERS`` / ``NNLS_SOLVERS``).
    func : callable or None
        The mode's function on a matrix (``pca``, ``nmf``, ``nnls``), for reference.
    """

    name: str
    label: str
    question: str
    run: Callable
    options: frozenset = field(default_factory=frozenset)
    seeded: bool = False
    builds_maps: bool = False
    fixed_spectra: bool = False
    non_negative: bool = True
    pick_solver: Callable | None = None
    solvers: Mapping | None = None
    func: Callable | None = None

    @property
    def needs_spectra(self) -> bool:
        """Requires trusted spectra (fixed-H NNLS)."""
        return self.seeded and self.fixed_spectra

    def uses(self, option: str) -> bool:
        """Whether the mode uses the config field ``option``."""
        return option in self.options

    def solver_names(self, loss: str | None = None) -> list[str]:
        """Solver names of the mode's table (empty without one); with ``loss``, only
        those of entries that fit it (``SolverSpec.losses``)."""
        return sorted({key[0] for key, spec in (self.solvers or {}).items()
                       if loss is None or loss in spec.losses})

    def backend_names(self, solver: str = "auto", loss: str | None = None) -> list[str]:
        """Backends of the mode's table, for one solver or all (``"auto"``); with
        ``loss``, only those of entries that fit it."""
        return sorted({key[1] for key, spec in (self.solvers or {}).items()
                       if solver in ("auto", key[0]) and spec.available()
                       and (loss is None or loss in spec.losses)})


#: The registered modes, in order of prior knowledge.
MODES: dict[str, ModeSpec] = {}


def register_mode(spec: ModeSpec) -> ModeSpec:
    """Add a mode to :data:`MODES` (it then appears in the CLI and the dock).

    Raises
    ------
    ValueError
        When a mode of that name is already registered.
    """
    if not isinstance(spec, ModeSpec):
        raise TypeError(f"register_mode needs a ModeSpec, got {type(spec).__name__}.")
    if spec.name in MODES:
        raise ValueError(f"A mode {spec.name!r} is already registered.")
    MODES[spec.name] = spec
    return spec


def unregister_mode(name: str) -> None:
    """Remove a registered mode (for tests and plugins that add one temporarily)."""
    MODES.pop(name, None)
