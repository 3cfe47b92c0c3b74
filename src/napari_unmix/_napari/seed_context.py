"""What the dock's component rows are resolved against: the viewer's layers, held by identity.

A row seeded from a Shapes or Labels layer records the layer's name *and* its
identity (napari's ``layer.unique_id``, see :class:`~.seed_inputs.SourceChoice`
``layer_uid``).  :meth:`SeedContext.layer_for` finds the layer by its identity, so
that:

* a renamed layer is still found (the row follows it);
* a deleted layer is an error naming it, never a silent switch to another layer
  (the layer menus of the table would otherwise fall back to the next layer);
* a layer that was replaced by another one of the same name (deleted, then a new
  one added under its name) is an error too: the new layer holds other pixels.

Rows without an identity (made by hand before the layer menus knew it, or read
from an older setup file) are resolved by name.

Nothing here imports Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .rois import ImageGrid, RoiError, labels_image

__all__ = ["LAYER_TYPES", "SeedContext", "layer_uid", "missing_layer_text"]

#: Layer kinds a row may be seeded from, by the editor's field type.
LAYER_TYPES = {"shapes-layer": "shapes", "labels-layer": "labels"}


def layer_uid(layer) -> str | None:
    """A layer's identity as text (napari's ``unique_id``), None when it has none."""
    uid = getattr(layer, "unique_id", None)
    return None if uid is None else str(uid)


def missing_layer_text(name, uid, layers, kind: str = "layer") -> str | None:
    """Why the layer a row holds is not there any more (None when it is there).

    ``layers``: the viewer's layers; ``kind``: what to call the layer in the text.
    """
    if not name and uid is None:
        return None
    if uid is not None and any(layer_uid(lyr) == uid for lyr in layers):
        return None
    if uid is None:
        return None if name in layers else f"{kind} {name!r} is not in the viewer"
    if name in layers:
        return (f"{kind} {name!r} was replaced by another layer of the same name (the row "
                "holds the layer it was made from, not its name)")
    return f"{kind} {name!r} was deleted"


@dataclass
class SeedContext:
    """What rows are resolved against.

    Parameters
    ----------
    layers : mapping name -> layer
        The viewer's layers (``viewer.layers`` works).
    grid : ImageGrid
        The image being unmixed.
    previous : UnmixResult, optional
        The last result, for ``previous-result`` sources.
    label_layer : str, optional
        The Labels layer whose image is the run's label image: its label rows give
        ``RoiLabel``, rows of other Labels layers ``RoiMask`` (set by
        :func:`~.seed_inputs.build_components`).
    """

    layers: object
    grid: ImageGrid
    previous: object = None
    label_layer: str | None = None
    _label_cache: dict = field(default_factory=dict)

    def layer(self, name, layer_type):
        """The layer ``name`` of ``layer_type`` ``"shapes"`` or ``"labels"``.

        Raises
        ------
        RoiError
            When there is no such layer, or it is of another type.
        """
        from napari.layers import Labels, Shapes

        cls = {"shapes": Shapes, "labels": Labels}[layer_type]
        if not name or name not in self.layers:
            raise RoiError(f"No {cls.__name__} layer {name!r} in the viewer; choose one in the "
                           "component table.")
        layer = self.layers[name]
        if not isinstance(layer, cls):
            raise RoiError(f"Layer {name!r} is not a {cls.__name__} layer.")
        return layer

    def layer_name(self, name, uid, layer_type) -> str:
        """The current name of the layer a row holds (by identity ``uid``, else by
        ``name``); RoiError when it was deleted or replaced."""
        if uid is None:  # a row without an identity: by name
            self.layer(name, layer_type)
            return name
        kind = {"shapes": "Shapes layer", "labels": "Labels layer"}[layer_type]
        problem = missing_layer_text(name, uid, self.layers, kind)
        if problem is not None:
            raise RoiError(f"{problem}; choose a layer in the component's row, or make the "
                           "rows again with 'Components from layer'.")
        name = next(lyr.name for lyr in self.layers if layer_uid(lyr) == uid)
        self.layer(name, layer_type)  # the type
        return name

    def labels(self, name) -> np.ndarray:
        """The label image of Labels layer ``name`` on the grid (read once)."""
        if name not in self._label_cache:
            self._label_cache[name] = labels_image(self.layer(name, "labels"), self.grid)
        return self._label_cache[name]
