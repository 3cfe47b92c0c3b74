"""The pixel inspector's mouse hooks on the viewer: a click (without dragging), or a
move with Shift held, asks the dock to show that pixel (:mod:`.inspector`).

The hooks hold the dock weakly (napari keeps its mouse callbacks for as long as the
viewer lives) and are removed when the dock goes away (:meth:`InspectorHooks.detach`).
Clicks while a layer is being edited (painting labels, drawing shapes) are the
layer's, not the inspector's: only the pan / zoom mode inspects.
"""

from __future__ import annotations

import weakref

__all__ = ["InspectorHooks"]


def _editing(viewer) -> bool:
    layer = viewer.layers.selection.active
    mode = str(getattr(layer, "mode", "pan_zoom"))
    return layer is not None and mode not in ("pan_zoom", "Mode.PAN_ZOOM", "transform")


class InspectorHooks:
    """Mouse callbacks that call ``dock.inspect_at(world_position)``."""

    def __init__(self, viewer, dock):
        self._viewer = viewer
        self._dock = weakref.ref(dock)
        viewer.mouse_drag_callbacks.append(self.on_press)
        viewer.mouse_move_callbacks.append(self.on_move)

    def detach(self) -> None:
        for callbacks, hook in ((self._viewer.mouse_drag_callbacks, self.on_press),
                                (self._viewer.mouse_move_callbacks, self.on_move)):
            if hook in callbacks:
                callbacks.remove(hook)

    def _inspect(self, viewer, position) -> None:
        dock = self._dock()
        if dock is None:
            self.detach()
            return
        if not _editing(viewer):
            dock.inspect_at(position)

    def on_press(self, viewer, event):
        """A press: inspect on release if the mouse did not move (a drag pans)."""
        start = tuple(event.position)
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = True
            yield
        if not dragged:
            self._inspect(viewer, start)

    def on_move(self, viewer, event) -> None:
        """A move with Shift held: inspect the pixel under the mouse."""
        if "Shift" in {str(m) for m in getattr(event, "modifiers", ())}:
            self._inspect(viewer, tuple(event.position))
