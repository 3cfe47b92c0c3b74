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

Nothing here imports Qt.
"""

from __future__ import annotations

import numpy as np

from .rois import ImageGrid, RoiError

__all__ = ["seed_layer_geometry"]

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
