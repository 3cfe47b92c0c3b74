"""The dock's analysis settings: a magicgui form whose choices come from the core tables.

Modes come from ``core.modes.MODES``; solvers and backends from
``core.solvers.NMF_SOLVERS`` (NNMF modes) or ``NNLS_SOLVERS`` (fixed-H NNLS), only
those that can run here (torch ones need PyTorch); W-seed modes, fallbacks and
negative-value policies from ``core.seeds`` / ``core.preprocess``.  A solver added
to a table shows up here without GUI code.  Options a mode does not use are hidden.
The form only holds values; :meth:`SettingsForm.config_kwargs` hands them to
:class:`~napari_unmix.core.analysis.AnalysisConfig`.

Images with a series axis (z or t: a spatial axis before the Y-X plane, e.g.
``(Z, C, Y, X)``) also get a *series* choice (:data:`SERIES_CHOICES`, see the dock's
documentation in :mod:`.widget`) and the reference plane of the series strategies;
the dock shows them through :meth:`SettingsForm.set_series`.  They are hidden for
single ``(C, Y, X)`` stacks.
"""

from __future__ import annotations

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label, LineEdit, SpinBox

from ..core.device import cuda_available, get_torch, resolve_device
from ..core.modes import MODES
from ..core.preprocess import NEGATIVE_POLICIES, SMOOTHING_METHODS
from ..core.seeds import H_FALLBACKS, W_SEED_MODES
from ..core.solvers import NMF_SOLVERS, NNLS_SOLVERS, pick_nmf_solver, pick_nnls_solver

__all__ = ["SEEDED_MODES", "SERIES_CHOICES", "SettingsForm", "solver_table"]

#: Modes whose components come from the component table.
SEEDED_MODES = ("seeded-nmf", "nnls")

#: How an image with a series axis (z / t) is unmixed: menu label -> value.
SERIES_CHOICES = {
    "joint fit (all planes as pixels)": "joint",
    "per plane": "per-plane",
    "shared basis from plane N": "plane",
    "shared basis from all planes (pooled sample)": "pooled",
}

# which modes use which option (the others are hidden)
_USED_BY = {
    "n_components": ("pca", "nmf"),
    "standardize": ("pca",),
    "solver": ("nmf", "seeded-nmf", "nnls"),
    "backend": ("nmf", "seeded-nmf", "nnls"),
    "device": ("nmf", "seeded-nmf", "nnls"),
    "device_info": ("nmf", "seeded-nmf", "nnls"),
    "tol": ("nmf", "seeded-nmf", "nnls"),
    "max_iter": ("nmf", "seeded-nmf", "nnls"),
    "random_state": ("nmf", "seeded-nmf"),
    "w_seed_mode": ("seeded-nmf",),
    "overwrite": ("seeded-nmf",),
    "h_fallback": ("seeded-nmf", "nnls"),
    "negative": ("nmf", "seeded-nmf", "nnls"),
    "subtract_background": ("seeded-nmf", "nnls"),
    "smoothing": ("seeded-nmf", "nnls"),
}


def solver_table(mode: str) -> dict:
    """The solver table a mode picks from (empty for PCA)."""
    if mode == "nnls":
        return NNLS_SOLVERS
    return NMF_SOLVERS if mode in ("nmf", "seeded-nmf") else {}


def _label(name, text):
    return Label(name=name, value=text)


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
                              choices=lambda _w: list(self._image_choices()),
                              tooltip="The spectral stack to unmix.")
        self.spectral_axis = SpinBox(name="spectral_axis", label="spectral axis", min=0, max=0,
                                     tooltip="Index of the spectral axis in the image's data.")
        self.axis_info = _label("axis_info", "")
        self.series = ComboBox(
            name="series", label="series", value="joint",
            choices=[(text, value) for text, value in SERIES_CHOICES.items()],
            tooltip="joint fit: one fit over the pixels of all planes.\n"
            "per plane: every plane fitted on its own (its own spectra).\n"
            "shared basis: spectra fitted once (on the reference plane, or on a pixel "
            "sample of all planes), then every plane's maps by fixed-spectra NNLS, so "
            "map values compare across planes.")
        self.series_plane = SpinBox(
            name="series_plane", label="reference plane", min=0, max=0,
            tooltip="Shared basis from plane N: the plane the spectra are fitted on (its "
            "ROIs / labels seed them).\nPer plane: the plane whose component order the "
            "others follow.\nFollows the viewer's slider until you change it.")
        self.series_info = _label("series_info", "")
        self.mode = ComboBox(name="mode", label="mode", value="seeded-nmf",
                             choices=[(spec.label, name) for name, spec in MODES.items()])
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
        self.tol = FloatSpinBox(name="tol", label="tol", min=0.0, max=1.0, step=1e-6, value=1e-4)
        self.max_iter = SpinBox(name="max_iter", label="max_iter", min=1, max=10_000_000,
                                value=1000)
        self.random_state = LineEdit(name="random_state", label="random_state", value="0",
                                     tooltip="An integer makes runs repeatable; leave empty "
                                     "for a new random seed (recorded in the result).")
        self.w_seed_mode = ComboBox(name="w_seed_mode", label="W-seed mode",
                                    choices=list(W_SEED_MODES), value="nnls")
        self.overwrite = CheckBox(name="overwrite", value=True,
                                  text="overwrite spectral-info maps from H")
        self.h_fallback = ComboBox(name="h_fallback", label="spectrum fallback",
                                   choices=list(H_FALLBACKS), value="residual")
        self.negative = ComboBox(name="negative", label="negative values",
                                 choices=list(NEGATIVE_POLICIES), value="raise",
                                 tooltip="raise: refuse negative data; clip: set to 0; "
                                 "offset: shift all data up by the minimum.")
        self.subtract_background = CheckBox(name="subtract_background", value=False,
                                            text="subtract background component's spectrum")
        self.smoothing = ComboBox(name="smoothing", label="smoothing",
                                  choices=["none", *SMOOTHING_METHODS], value="none")
        self.container = Container(widgets=[
            self.image, self.spectral_axis, self.axis_info, self.series, self.series_plane,
            self.series_info, self.mode, self.n_components,
            self.standardize, self.solver, self.backend, self.device, self.device_info,
            self.tol, self.max_iter, self.random_state, self.w_seed_mode, self.overwrite,
            self.h_fallback, self.negative, self.subtract_background, self.smoothing,
        ], labels=True)
        self.mode.changed.connect(self.update_for_mode)
        self.solver.changed.connect(self._update_backends)
        self.backend.changed.connect(self.update_device_info)
        self.device.changed.connect(self.update_device_info)
        self.series.changed.connect(self._update_series_widgets)
        self._has_series = False
        self.set_series(None)
        self.update_for_mode()

    # -- choices -------------------------------------------------------------------
    def _solver_choices(self, _widget=None):
        table = solver_table(self.mode.value)
        return ["auto", *sorted({spec.algorithm for spec in table.values() if spec.available()})]

    def _backend_choices(self, _widget=None):
        table = solver_table(self.mode.value)
        solver = self.solver.value
        return ["auto", *sorted({spec.backend for spec in table.values()
                                 if spec.available() and solver in ("auto", spec.algorithm)})]

    def update_for_mode(self, *_):
        mode = self.mode.value
        for name, modes in _USED_BY.items():
            getattr(self, name).visible = mode in modes
        self.solver.reset_choices()  # keeps the value when it is still offered
        self._update_backends()

    def _update_backends(self, *_):
        self.backend.reset_choices()
        self.update_device_info()

    def picked_solver(self):
        """The registered implementation the current choice resolves to (or None: PCA)."""
        mode = self.mode.value
        if mode == "pca":
            return None
        if mode == "nnls":
            return pick_nnls_solver(self.solver.value, self.backend.value)
        return pick_nmf_solver(self.solver.value, self.backend.value,
                               seeded=mode == "seeded-nmf")

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
        self.device_info.value = text

    # -- series --------------------------------------------------------------------
    def set_series(self, axis: int | None, n_planes: int = 1, text: str = "") -> None:
        """Offer the series choice for an image whose series axis is ``axis`` (data
        axis, ``n_planes`` long); ``axis=None`` hides it (a single spectral image)."""
        self._has_series = axis is not None
        self.series_plane.max = max(int(n_planes) - 1, 0)
        self.series_info.value = text
        self._update_series_widgets()

    def _update_series_widgets(self, *_):
        shown = self._has_series
        self.series.visible = shown
        self.series_info.visible = shown and bool(self.series_info.value)
        self.series_plane.visible = shown and self.series.value in ("plane", "per-plane")

    def series_choice(self) -> str | None:
        """The chosen series strategy (``"per-plane"``, ``"plane"``, ``"pooled"``), or
        None for a joint fit (also when the image has no series axis)."""
        if not self._has_series or self.series.value == "joint":
            return None
        return self.series.value

    # -- values --------------------------------------------------------------------
    def random_state_value(self):
        text = str(self.random_state.value).strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"random_state must be an integer or empty (random), got "
                             f"{text!r}.") from None

    def config_kwargs(self) -> dict:
        """Keywords of :class:`AnalysisConfig` (everything but components/preprocessing)."""
        mode = self.mode.value
        kw = {"mode": mode, "tol": float(self.tol.value), "max_iter": int(self.max_iter.value),
              "negative": self.negative.value, "device": self.device.value,
              "standardize": bool(self.standardize.value)}
        if mode != "pca":
            kw.update(solver=self.solver.value, backend=self.backend.value)
        if mode in ("pca", "nmf"):
            kw["n_components"] = int(self.n_components.value)
        if mode in ("nmf", "seeded-nmf"):
            kw["random_state"] = self.random_state_value()
        if mode == "seeded-nmf":
            kw.update(w_seed_mode=self.w_seed_mode.value, overwrite=bool(self.overwrite.value))
        if mode in SEEDED_MODES:
            kw["h_fallback"] = self.h_fallback.value
        return kw
