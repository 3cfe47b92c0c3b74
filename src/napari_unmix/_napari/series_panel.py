"""The dock's z / t series panel: the series choice and the reference plane.

An image with a spatial axis besides the Y-X plane, e.g. ``(Z, C, Y, X)``, can be
unmixed as a joint fit, per plane, or with a shared basis (see
:data:`~.series_run.SERIES_CHOICES` and the dock's documentation in :mod:`.widget`).
The panel shows that choice, the reference plane and a line about the series axis;
it is hidden for single ``(C, Y, X)`` stacks.

The panel only shows and edits: :meth:`SeriesPanel.set_grid` sets it up for an
image, :meth:`SeriesPanel.show_plane` shows the reference plane the session chose
(it follows the viewer's slider), and the panel's signals tell what the user did
(:attr:`SeriesPanel.choice_changed`, :attr:`SeriesPanel.plane_edited`).
"""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, Label, SpinBox
from psygnal import Signal

from .series_run import PLANE_CHOICES, SERIES_CHOICES, series_axis, series_text

__all__ = ["SeriesPanel"]


class SeriesPanel:
    """The series choice of the dock (``self.container`` is the magicgui Container).

    Signals
    -------
    choice_changed(str)
        The user chose another series strategy (a value of ``SERIES_CHOICES``).
    plane_edited(int)
        The user set the reference plane (not emitted for :meth:`show_plane`).
    """

    choice_changed = Signal(str)
    plane_edited = Signal(int)

    def __init__(self):
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
        self.series_info = Label(name="series_info", value="")
        self.container = Container(widgets=[self.series, self.series_plane, self.series_info],
                                   labels=True)
        self._has_series = False
        self._showing = False
        self.series.changed.connect(self._on_choice)
        self.series_plane.changed.connect(self._on_plane)
        self.set_grid(None)

    # -- entry points --------------------------------------------------------------
    def set_grid(self, grid) -> None:
        """Set the panel up for an image (an :class:`~.rois.ImageGrid`); ``None`` or an
        image without a series axis hides it."""
        axis = None if grid is None else series_axis(grid)
        self._has_series = axis is not None
        self.series_plane.max = max(int(grid.shape[axis]) - 1, 0) if axis is not None else 0
        self.series_info.value = series_text(grid) if axis is not None else ""
        self._update_widgets()

    def choice(self) -> str | None:
        """The chosen series strategy (``"per-plane"``, ``"plane"``, ``"pooled"``), or
        None for a joint fit (also when the image has no series axis)."""
        if not self._has_series or self.series.value == "joint":
            return None
        return self.series.value

    #: the name the dock's tests and scripts know
    series_choice = choice

    def show_plane(self, plane: int) -> None:
        """Show the reference plane chosen for the user (no :attr:`plane_edited`)."""
        if int(plane) == self.series_plane.value:
            return
        self._showing = True
        try:
            self.series_plane.value = int(plane)
        finally:
            self._showing = False

    # -- internals -----------------------------------------------------------------
    def _update_widgets(self) -> None:
        shown = self._has_series
        native = self.container.native
        if native.parent() is not None or not shown:  # showing a parentless one opens a window
            native.setVisible(shown)
        self.series.visible = shown
        self.series_info.visible = shown and bool(self.series_info.value)
        self.series_plane.visible = shown and self.series.value in PLANE_CHOICES

    def _on_choice(self, *_):
        self._update_widgets()
        self.choice_changed.emit(str(self.series.value))

    def _on_plane(self, *_):
        if not self._showing:
            self.plane_edited.emit(int(self.series_plane.value))
