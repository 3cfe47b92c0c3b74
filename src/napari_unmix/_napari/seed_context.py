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

A row seeded from a run's result (``previous-result``) holds that run by its
number (:attr:`~.seed_inputs.SourceChoice.run`) in the same way: the dock keeps the
runs its rows hold, also after they left the history (their layers deleted or
replaced by a newer run), so such a row keeps its seeds and never takes another
run's (:meth:`SeedContext.run_of`); and its maps seed the new run only when they
were computed on this image, on this grid (:meth:`SeedContext.maps_mismatch`): a
result of another image with the same number of pixels is not a starting map.

Nothing here imports Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .rois import ImageGrid, RoiError, labels_image

__all__ = ["LAYER_TYPES", "SeedContext", "layer_uid", "missing_layer_text", "missing_run_text"]

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


def missing_run_text(run, runs) -> str | None:
    """Why run ``run`` (a number, or None: the shown run) that a row takes its seeds
    from is not known (None when it is); ``runs``: ``{number: RunRecord}``."""
    if run is None or runs is None or run in runs:
        return None
    return (f"run {int(run)}, which its seeds come from, is not in this dock any more; "
            "show a run and press 'Use result as seeds', or choose another source")


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
    runs : dict, optional
        ``{number: RunRecord}`` (:mod:`.run_history`): the runs rows may hold by their
        number, and take their seeds from.
    shown_run : RunRecord, optional
        The run shown (``previous`` is its result): rows without a run number.
    """

    layers: object
    grid: ImageGrid
    previous: object = None
    label_layer: str | None = None
    runs: object = None
    shown_run: object = None
    _label_cache: dict = field(default_factory=dict)

    def run_of(self, choice):
        """The :class:`~.run_history.RunRecord` a ``previous-result`` row takes its
        seeds from: its own run (``choice.run``), else the shown run; None when only a
        bare result (``previous``) is known.  ValueError when the row's run is gone."""
        if choice.run is None:
            return self.shown_run
        record = None if self.runs is None else self.runs.get(choice.run)
        if record is None:
            problem = missing_run_text(choice.run, self.runs) or (
                f"run {int(choice.run)}, which its seeds come from, is not known here")
            raise ValueError(problem[0].upper() + problem[1:] + ".")
        return record

    def result_of(self, choice):
        """The result a ``previous-result`` row takes its seeds from (see
        :meth:`run_of`); None when there is none."""
        record = self.run_of(choice)
        return self.previous if record is None else record.result

    def maps_mismatch(self, choice) -> str | None:
        """Why the maps of the row's run cannot be the starting maps on this image
        (None: they can).  They must come from this image layer (by identity; an
        opened result has none) on the same spatial grid."""
        record = self.run_of(choice)
        res = self.previous if record is None else record.result
        if res is None:
            return "there is no result"
        shape = tuple(self.grid.spatial_shape)
        where = "the result" if record is None else f"run {record.number}"
        if record is not None and record.image_uid is not None and \
                record.image_uid != layer_uid(self.grid.layer):
            return (f"{where} was computed on image {record.image!r}, not on "
                    f"{self.grid.layer.name!r}")
        known = None if record is None else record.spatial_shape
        if known is not None and tuple(known) != shape:
            return (f"{where}'s maps are {' x '.join(map(str, known))} pixels, the image "
                    f"{' x '.join(map(str, shape))}")
        if res.W.shape[0] != int(np.prod(shape)):
            return f"{where} has {res.W.shape[0]} pixels, the image {int(np.prod(shape))}"
        return None

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
