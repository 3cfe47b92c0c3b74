"""The dock's analysis settings: a magicgui form whose choices come from the core tables.

The mode menu is :data:`napari_unmix.core.modes.MODES` (a mode registered there shows
up here, without GUI code), and which settings are shown is said by the mode's
:class:`~napari_unmix.core.modes.ModeSpec`: a setting is visible when the mode uses
the :class:`~napari_unmix.core.analysis.AnalysisConfig` field it sets
(``spec.uses(...)``, see :data:`OPTION_OF`).  Solvers and backends come from the
mode's solver table (``spec.solvers``: ``NMF_SOLVERS`` / ``NNLS_SOLVERS``), only
those that can run here (torch ones need PyTorch), and the implementation a choice
resolves to from ``spec.pick_solver``; W-seed modes, fallbacks, initialisations and
negative-value policies from ``core.seeds`` / ``core.init`` / ``core.data``.  The
form only holds values; :meth:`SettingsForm.config_kwargs` hands them to
:class:`~napari_unmix.core.analysis.AnalysisConfig`.

The image to unmix and its spectral axis are chosen here too; the z / t series
choice has its own panel (:mod:`.series_panel`).
"""

from __future__ import annotations

from dataclasses import dataclass

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, LineEdit, SpinBox

from ..core.data import NAN_POLICIES, NEGATIVE_POLICIES
from ..core.device import backend_for_device, cuda_available, get_torch, resolve_device
from ..core.init import INITS
from ..core.modes import MODES
from ..core.preprocess import SMOOTHING_METHODS
from ..core.seeds import H_FALLBACKS, W_SEED_MODES
from ..core.solvers import ABUNDANCES, LOSSES
from .help_texts import TOOLTIPS

__all__ = ["EVERY_MODE", "OPTION_OF", "SettingsForm", "first_run_mode", "form_takes",
           "refining_mode"]

#: Settings widget -> the AnalysisConfig field it sets; shown when the mode uses it.
OPTION_OF = {
    "n_components": "n_components",
    "standardize": "standardize",
    "solver": "solver",
    "backend": "backend",
    "device": "device",
    "device_info": "device",
    "tol": "tol",
    "max_iter": "max_iter",
    "init": "init",
    "random_state": "random_state",
    "anchor": "anchor",
    "w_seed_mode": "w_seed_mode",
    "overwrite": "overwrite",
    "h_fallback": "h_fallback",
    "negative": "negative",
    "nan_policy": "nan_policy",
    "loss": "loss",
    "abundance": "abundance",
    "subtract_background": "preprocessing",
    "smoothing": "preprocessing",
}
#: Config fields every mode takes (the analysis reads them, not the mode).
EVERY_MODE = frozenset({"nan_policy"})


def form_takes(spec, option: str) -> bool:
    """Whether the form shows and sends the config field ``option`` for mode ``spec``."""
    return option in EVERY_MODE or spec.uses(option)


#: Settings that pick from the mode's solver table (hidden when it has none).
_SOLVER_WIDGETS = ("solver", "backend", "device", "device_info")


@dataclass(frozen=True)
class _Models:
    """What ``ModeSpec.pick_solver`` reads of a config: the loss and abundance model."""

    loss: str = "frobenius"
    abundance: str = "free"
    components: tuple = ()

    def anchor_strengths(self):
        return [1.0]  # as the dock's seeded runs: anchored


def _label(name, text):
    return Label(name=name, value=text)


def _mode_choices(_widget=None):
    return [(spec.label, name) for name, spec in MODES.items()]


def first_run_mode() -> str:
    """The dock's default mode: the first non-negative mode that needs no seeds
    (random NNMF), so that a first Run works before any row exists."""
    return next((name for name, spec in MODES.items() if spec.non_negative and not spec.seeded),
                next(iter(MODES)))


def refining_mode() -> str:
    """The mode that refines seeds, maps included (the first seeded mode that builds
    maps: seeded NNMF); what the dock switches to when rows are made, and what "use
    result as seeds" picks."""
    return next((name for name, spec in MODES.items() if spec.seeded and spec.builds_maps),
                next(iter(MODES)))


class SettingsForm:
    """The settings part of the dock (``self.container`` is the magicgui Container).

    Parameters
    ----------
    image_choices : callable, optional
        Returns the names of the images that can be unmixed (the first is the
        default).  Menus get their choices from callables because magicgui
        recomputes choices whenever a widget is re-parented (e.g. docked).
    """

    def __init__(self, image_choices=None):
        self._image_choices = image_choices or (lambda: [])
        self.image = ComboBox(name="image", label="image",
                              choices=lambda _w: list(self._image_choices()))
        self.spectral_axis = SpinBox(name="spectral_axis", label="spectral axis", min=0, max=0)
        self.axis_info = _label("axis_info", "")
        self.mode = ComboBox(name="mode", label="mode", value=first_run_mode(),
                             choices=_mode_choices)
        self.n_components = SpinBox(name="n_components", label="components", min=1, max=256,
                                    value=4)
        self.standardize = CheckBox(name="standardize", text="standardise channels", value=True)
        self.solver = ComboBox(name="solver", label="solver", choices=self._solver_choices,
                               value="auto")
        self.backend = ComboBox(name="backend", label="backend", choices=self._backend_choices,
                                value="auto")
        self.device = ComboBox(name="device", label="device", value="auto",
                               choices=["auto", "cpu"] + (["cuda"] if cuda_available() else []))
        self.device_info = _label("device_info", "")
        # a line edit: a spin box rounds anything below its step (1e-6) to 0
        self.tol = LineEdit(name="tol", label="tolerance", value="1e-4")
        self.max_iter = SpinBox(name="max_iter", label="max iterations", min=1,
                                max=10_000_000, value=1000)
        self.init = ComboBox(name="init", label="init", choices=list(INITS), value=INITS[0])
        self.random_state = LineEdit(name="random_state", label="random_state", value="0")
        self.anchor = FloatSpinBox(
            name="anchor", label="trust in seeds", min=0.0, max=1000.0, step=0.1, value=1.0)
        self.w_seed_mode = ComboBox(
            name="w_seed_mode", label="W-seed mode", choices=list(W_SEED_MODES), value="nnls")
        self.overwrite = CheckBox(
            name="overwrite", value=True, text="maps from the seed spectra")
        self.h_fallback = ComboBox(
            name="h_fallback", label="spectrum fallback", choices=list(H_FALLBACKS),
            value="residual")
        self.negative = ComboBox(name="negative", label="negative values",
                                 choices=list(NEGATIVE_POLICIES), value="raise")
        self.nan_policy = ComboBox(name="nan_policy", label="NaN pixels",
                                   choices=list(NAN_POLICIES), value="raise")
        self.loss = ComboBox(name="loss", label="loss", choices=list(LOSSES), value="frobenius")
        self.abundance = ComboBox(name="abundance", label="abundances", choices=list(ABUNDANCES),
                                  value="free")
        self.subtract_background = CheckBox(name="subtract_background", value=False,
                                            text="subtract background component's spectrum")
        self.smoothing = ComboBox(name="smoothing", label="smoothing",
                                  choices=["none", *SMOOTHING_METHODS], value="none")
        self.container = Container(widgets=[
            self.image, self.spectral_axis, self.axis_info, self.mode, self.n_components,
            self.standardize, self.solver, self.backend, self.device, self.device_info,
            self.tol, self.max_iter, self.init, self.random_state, self.anchor,
            self.w_seed_mode,
            self.overwrite, self.h_fallback, self.negative, self.nan_policy, self.loss,
            self.abundance,
            self.subtract_background, self.smoothing,
        ], labels=True)
        for w in self.container:
            if w.name in TOOLTIPS:
                w.tooltip = TOOLTIPS[w.name]
        self.mode.changed.connect(self.update_for_mode)
        self.solver.changed.connect(self._update_backends)
        self.loss.changed.connect(self.update_for_mode)
        self.abundance.changed.connect(self.update_device_info)
        self.backend.changed.connect(self.update_device_info)
        self.device.changed.connect(self.update_device_info)
        self.update_for_mode()

    # -- the mode ------------------------------------------------------------------
    @property
    def spec(self):
        """The :class:`~napari_unmix.core.modes.ModeSpec` of the chosen mode."""
        return MODES[self.mode.value]

    def reset_mode_choices(self) -> None:
        """Offer the modes registered now (keeps the choice while it is offered)."""
        self.mode.reset_choices()

    # -- choices -------------------------------------------------------------------
    def _table(self) -> dict:
        spec = MODES.get(self.mode.value) if self.mode.value is not None else None
        return dict(spec.solvers or {}) if spec is not None else {}

    def _loss(self):
        """The chosen loss, when the mode uses one (None: any solver)."""
        spec = MODES.get(self.mode.value) if self.mode.value is not None else None
        loss = getattr(self, "loss", None)  # (the solver menu is filled before it exists)
        return loss.value if loss is not None and spec is not None and spec.uses("loss") \
            else None

    def _solver_choices(self, _widget=None):
        table, loss = self._table(), self._loss()
        return ["auto", *sorted({s.algorithm for s in table.values() if s.available()
                                 and (loss is None or loss in s.losses)})]

    def _backend_choices(self, _widget=None):
        spec = MODES.get(self.mode.value) if self.mode.value is not None else None
        if spec is None or not spec.solvers:
            return ["auto"]
        return ["auto", *spec.backend_names(self.solver.value or "auto", loss=self._loss())]

    def update_for_mode(self, *_):
        spec = self.spec
        for name, option in OPTION_OF.items():
            shown = form_takes(spec, option)
            if name in _SOLVER_WIDGETS:
                shown = shown and bool(spec.solvers)
            getattr(self, name).visible = shown
        self.solver.reset_choices()  # keeps the value when it is still offered
        self._update_backends()

    def _update_backends(self, *_):
        self.backend.reset_choices()
        self.update_device_info()

    def picked_solver(self):
        """The registered implementation the current choice resolves to (None for a
        mode without a solver table, e.g. PCA)."""
        spec = self.spec
        if spec.pick_solver is None:
            return None
        # a named GPU runs the torch solvers, as in the core (device.backend_for_device)
        backend = backend_for_device(self.backend.value, self.device.value)
        return spec.pick_solver(self.solver.value, backend, config=_Models(
            loss=self.loss.value if spec.uses("loss") else "frobenius",
            abundance=self.abundance.value if spec.uses("abundance") else "free"))

    def update_device_info(self, *_):
        try:
            spec = self.picked_solver()
        except (ValueError, ImportError) as exc:
            self.device_info.value = f"✗ {exc}"
            return
        if spec is None:
            self.device_info.value = ""
            return
        self.device.enabled = spec.needs_torch
        if not spec.needs_torch:
            text = f"{spec.algorithm}/{spec.backend} runs on the CPU (CUDA not used)"
        else:
            try:
                dev = resolve_device(self.device.value)
            except (ValueError, ImportError) as exc:
                self.device_info.value = f"✗ {exc}"
                return
            if dev.startswith("cuda"):
                torch = get_torch()
                text = (f"{spec.algorithm}/{spec.backend} on CUDA: "
                        f"{torch.cuda.get_device_name(torch.device(dev))}")
            else:
                why = "chosen" if self.device.value == "cpu" else "no CUDA GPU visible"
                text = f"{spec.algorithm}/{spec.backend} on the CPU ({why})"
        if not spec.cancellable:
            text += "; cannot be interrupted mid-fit"
        if spec.exact:
            text += "; exact: stops at the optimum ('tolerance' not used)"
        self.device_info.value = text

    # -- values --------------------------------------------------------------------
    def tol_value(self) -> float:
        """The tolerance: any positive number (``1e-8`` is kept, not rounded to 0), or 0
        (run to the iteration cap)."""
        text = str(self.tol.value).strip()
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"'tolerance' must be a positive number such as 1e-4 or 1e-8 "
                             f"(0: run to 'max iterations'), got {text!r}.")
        return value

    def random_state_value(self):
        text = str(self.random_state.value).strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"'random_state' must be an integer or empty (random), got "
                             f"{text!r}.") from None

    def config_kwargs(self) -> dict:
        """Keywords of :class:`AnalysisConfig`: the mode and every field it uses that a
        setting sets (components and preprocessing are the dock's, see
        :meth:`preprocessing_choice`)."""
        spec = self.spec
        values = {
            "n_components": lambda: int(self.n_components.value),
            "standardize": lambda: bool(self.standardize.value),
            "solver": lambda: self.solver.value,
            "backend": lambda: self.backend.value,
            "device": lambda: self.device.value,
            "tol": self.tol_value,
            "max_iter": lambda: int(self.max_iter.value),
            "init": lambda: self.init.value,
            "random_state": self.random_state_value,
            "anchor": lambda: float(self.anchor.value),
            "w_seed_mode": lambda: self.w_seed_mode.value,
            "overwrite": lambda: bool(self.overwrite.value),
            "h_fallback": lambda: self.h_fallback.value,
            "negative": lambda: self.negative.value,
            "nan_policy": lambda: self.nan_policy.value,
            "loss": lambda: self.loss.value,
            "abundance": lambda: self.abundance.value,
        }
        kw = {"mode": spec.name}
        for option, value in values.items():
            if form_takes(spec, option) and (option not in _SOLVER_WIDGETS or spec.solvers):
                kw[option] = value()
        return kw

    def preprocessing_choice(self) -> tuple[bool, str | None]:
        """``(subtract_background, smoothing)`` for modes that preprocess; ``(False,
        None)`` for the others."""
        if not self.spec.uses("preprocessing"):
            return False, None
        smoothing = self.smoothing.value
        return bool(self.subtract_background.value), (None if smoothing == "none"
                                                      else smoothing)
