"""Where the dock's "New seed layer" lies: exactly over the image's Y-X grid.

napari lines layers of fewer axes up with the *last* axes of the others, so a
2-D ``(Y, X)`` Labels layer lies over the image's Y and X axes only when those are
its last two.  For an image whose spectral axis comes after Y (a channel-last
``(Y, X, C)`` stack, ``(Z, Y, X, C)``, ``(Y, C, X)``), a 2-D layer would lie over
``(X, C)`` and the painted dabs would seed other pixels than the ones under the
cursor.  The seed layer therefore has the image's axes from Y on: ``(Y, X)``
when the spectral axis comes before Y (``(C, Y, X)``, ``(Z, C, Y, X)``), else
``(Y, X, 1)`` (``(Y, 1, X)`` ...), the length-1 axis standing for the spectral axis
and stretched over all channels (as the maps are, :func:`.layers.placement`), so
that dabs show and count on every channel.  Leading axes (Z, T) are left out: a
label means the same pixels on every plane.

The layer takes the image's transform on those axes: its scale and translate, and
its rotation, shear or affine when it has one, so that every label pixel lies on
an image pixel.  An image whose transform mixes its leading axes with Y / X (a
rotation across Z and Y) has no such layer: :class:`~.rois.RoiError`.

Region seeds read back from a file (a saved setup, :mod:`.dock_setup`) are painted
into new Labels layers by :func:`paint_seed_layers` and :func:`add_label_image`: seeds
of the Y-X plane (and masks of a z / t series that are the same on every plane) on
such a seed layer, seeds that differ between the planes of a series on a layer over
the image's planes, placed like the maps (:func:`.layers.placement`: a length-1 axis
where the image has its channels).  Each lies on the image's pixels, so the run reads
back exactly the pixels saved.

Nothing here imports Qt.
"""

from __future__ import annotations

import numpy as np

from .rois import ImageGrid, RoiError

__all__ = ["add_label_image", "paint_seed_layers", "paintable_mask", "seed_layer_geometry"]

_TOL = 1e-9


def seed_layer_geometry(grid: ImageGrid) -> tuple[tuple[int, ...], dict]:
    """The shape and ``add_labels`` placement keywords of a seed layer on ``grid``.

    Parameters
    ----------
    grid : ImageGrid
        The image being unmixed.

    Returns
    -------
    shape : tuple of int
        ``(Y, X)``, or with a length-1 spectral axis where it lies among or after them.
    kwargs : dict
        ``scale``, ``translate`` and ``units`` (and ``affine`` for a rotated, sheared
        or affine image) putting each label pixel on the image pixel under it.

    Raises
    ------
    RoiError
        When the image's transform mixes its leading axes with Y and X.
    """
    layer = grid.layer
    first = grid.yx_dims[0]
    axes = list(range(first, grid.ndim))
    s = grid.spectral_axis_index
    shape = tuple(1 if ax == s else grid.shape[ax] for ax in axes)
    units = tuple(str(tuple(layer.units)[ax]) for ax in axes)
    full = grid.affine  # data -> world, homogeneous
    lead = list(range(first))
    if lead and (np.abs(full[np.ix_(axes, lead)]).max() > _TOL
                 or np.abs(full[np.ix_(lead, axes)]).max() > _TOL):
        raise RoiError(
            f"Image {grid.name!r} is rotated or sheared across its leading axes and its Y / X "
            "axes, so no seed layer lies over its Y-X grid; remove that rotation, or paint on "
            "a Labels layer with as many axes as the image.")
    # one pixel of a spectral stand-in axis covers channel coordinates -0.5 .. n-0.5
    stretch = np.eye(len(axes) + 1)
    if s in axes:
        j = axes.index(s)
        n = grid.n_channels
        stretch[j, j] = n
        stretch[j, -1] = (n - 1) / 2.0
    sub = full[np.ix_(axes + [grid.ndim], axes + [grid.ndim])] @ stretch
    linear = sub[:-1, :-1]
    if np.allclose(linear, np.diag(np.diag(linear)), atol=_TOL):
        return shape, {"scale": np.diag(linear).copy(), "translate": sub[:-1, -1].copy(),
                       "units": units}
    return shape, {"affine": sub, "units": units}


# -- seeds read back from a file ---------------------------------------------------------
def _plane_shape(grid: ImageGrid) -> tuple[int, int]:
    ydim, xdim = grid.yx_dims
    return int(grid.shape[ydim]), int(grid.shape[xdim])


def paintable_mask(mask, grid: ImageGrid) -> np.ndarray | None:
    """A region seed's mask as it is painted on ``grid``: a Y-X mask as it is; a mask of
    the whole series (``grid.spatial_shape``) as its plane when it is the same on every
    plane (a seed layer means the same pixels on every plane), else as it is; None when
    it fits neither."""
    mask = np.asarray(mask, dtype=bool)
    plane = _plane_shape(grid)
    if mask.shape == plane:
        return mask
    if mask.shape != tuple(grid.spatial_shape):
        return None
    planes = mask.reshape((-1, *plane))
    return planes[0] if (planes == planes[:1]).all() else mask


def add_label_image(session, grid: ImageGrid, data, *, name: str):
    """Add a Labels layer holding ``data``, a label image of ``grid``'s Y-X plane (on a
    seed layer, :meth:`~.session.UnmixSession.new_seed_layer`) or of its whole series
    (over the image's planes, placed like the maps); returns it, or None when ``data``
    has neither shape."""
    from .layers import placement

    data = np.asarray(data)
    if data.shape == _plane_shape(grid):
        layer = session.new_seed_layer(name=name)
        layer.data = data.reshape(layer.data.shape)  # a channel-last image's: (Y, X, 1)
        return layer
    if data.shape != tuple(grid.spatial_shape):
        return None
    place, keep_axis = placement(grid.layer, grid.spectral_axis_index)
    if keep_axis:
        data = np.expand_dims(data, grid.spectral_axis_index)
    return session.viewer.add_labels(data, name=name, opacity=0.6, **place)


def _layer_groups(masks) -> list[list[int]]:
    """The masks (indices) painted into each Labels layer: a mask goes into the first
    layer none of whose masks it overlaps, so that every mask keeps all its pixels."""
    groups, painted = [], []
    for i, (_, mask) in enumerate(masks):
        j = next((j for j, p in enumerate(painted) if not (p & mask).any()), None)
        if j is None:
            groups.append([])
            painted.append(np.zeros_like(mask))
            j = len(groups) - 1
        groups[j].append(i)
        painted[j] |= mask
    return groups


def paint_seed_layers(session, grid: ImageGrid, masks, *, name: str) -> dict:
    """Paint the region seeds ``masks`` (``(component, mask)`` pairs of
    :func:`paintable_mask` masks) into new Labels layers "<name> seeds", one label per
    component: seeds that overlap go to further layers ("<name> seeds 2" ...), since a
    pixel holds one label, and so do masks of the series (beside masks of the plane).
    Returns ``{component: (layer, label id)}``."""
    out, n = {}, 0
    for shape in dict.fromkeys(mask.shape for _, mask in masks):
        same = [(comp, mask) for comp, mask in masks if mask.shape == shape]
        for group in _layer_groups(same):
            data = np.zeros(shape, dtype=np.uint8 if len(group) < 255 else np.uint16)
            for label, i in enumerate(group, start=1):
                data[same[i][1]] = label
            n += 1
            layer = add_label_image(session, grid, data,
                                    name=f"{name} seeds" + (f" {n}" if n > 1 else ""))
            out.update({same[i][0]: (layer, label) for label, i in enumerate(group, start=1)})
    return out
