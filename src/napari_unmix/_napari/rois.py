"""Shapes and Labels layers as regions of a spectral image's spatial grid.

The unmixing dock seeds components from regions the user drew (a Shapes layer) or
painted (a Labels layer, e.g. a segmentation made by another plugin).  This module
turns such layers into arrays on the *spatial grid* of the image being unmixed:
the image's data axes without its spectral axis, e.g. ``(Y, X)`` for a
``(C, Y, X)`` stack and ``(Z, Y, X)`` for a ``(Z, C, Y, X)`` series.

Coordinates
    A layer's data coordinates are taken to world coordinates with the layer's
    own transform (scale, translate, rotate, shear, affine), then to the image's
    data coordinates with the inverse of the image's transform.  Layers of
    different dimensionality are matched the way napari displays them: their
    *last* axes line up.  A layer may therefore have another pixel size or origin
    than the image; what counts is where it lies in the world.

Shapes (rectangles, polygons, ellipses)
    Each shape is mapped into the image's last two spatial axes (the "Y-X plane")
    and rasterised there by napari (``Shapes.to_masks``): a pixel belongs to the
    shape when napari's mask says so.  A coordinate the shape has along the
    image's spectral axis (the channel it was drawn on) is ignored: an ROI means
    the same pixels in every channel.  For images with further spatial axes
    (Z, T):

    * a shape that has a coordinate along such an axis (drawn on one plane of a
      Shapes layer with as many axes as the image) selects pixels **on that plane
      only**;
    * a shape of a layer that has no such axis (e.g. a 2-D Shapes layer over a
      ``(Z, C, Y, X)`` image) selects the same Y-X region **on every plane**.

    Lines and paths enclose no area and are refused, as are shapes not drawn in
    the Y-X plane (e.g. in the 3-D view), shapes on a plane outside the image,
    and shapes that do not overlap the image at all.  A shape that only partly
    overlaps the image is cut to it.

Labels
    Every pixel of the image's spatial grid takes the label found at its centre
    (nearest neighbour), so a label image of another resolution or origin works as
    long as its axes are parallel to the image's (no relative rotation).  A label
    image that has a spectral axis (a Labels layer created with the viewer's full
    dimensions and painted on some channel) is collapsed along it: a pixel gets the
    label painted on any channel; two different labels painted on the same pixel
    in different channels are an error, and so is a label axis over the spectral
    axis with neither one plane nor one per channel (a ``(Z, Y, X)`` segmentation
    over a ``(Z, C, Y, X)`` image lies over ``(C, Y, X)``).  Spatial axes the Labels
    layer lacks are broadcast, as for shapes.  An empty Labels layer (only 0) or one that lies
    outside the image is refused.

Every refusal is a :class:`RoiError` (a ``ValueError``) whose message names the
layer and says what to do; the dock shows it as a notification.  Nothing here
imports Qt, and no layer is modified.  The mean spectrum of a region is not taken
here: previews and runs both use :func:`napari_unmix.core.data.roi_mean_spectrum`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["AREA_SHAPES", "ImageGrid", "RoiError", "label_colors", "label_ids", "labels_image",
           "labels_off_grid", "layer_affine", "negative_label_ids", "shape_masks", "shapes_roi"]

#: Shape types that enclose an area and can be ROIs.
AREA_SHAPES = ("rectangle", "ellipse", "polygon")

_TOL = 1e-6


class RoiError(ValueError):
    """A layer cannot be used as a region of the image (the message says why)."""


def layer_affine(layer) -> np.ndarray:
    """The layer's data-to-world transform as a homogeneous ``(d+1, d+1)`` matrix.

    Built from the public ``layer.data_to_world`` by probing the origin and the
    unit vectors, so it includes scale, translate, rotate, shear and affine.
    """
    d = int(layer.ndim)
    origin = np.asarray(layer.data_to_world(np.zeros(d)), dtype=np.float64)
    mat = np.eye(d + 1)
    mat[:d, d] = origin
    for i in range(d):
        unit = np.zeros(d)
        unit[i] = 1.0
        mat[:d, i] = np.asarray(layer.data_to_world(unit), dtype=np.float64) - origin
    return mat


def _plain_data(layer):
    """The full-resolution data of a layer (level 0 of a multiscale one)."""
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return data


@dataclass(frozen=True, eq=False)
class ImageGrid:
    """The spatial grid of a spectral image layer.

    Parameters
    ----------
    layer : napari.layers.Image
        The image being unmixed.
    spectral_axis_index : int
        Position of the spectral axis in the layer's data.
    """

    layer: object
    spectral_axis_index: int

    def __post_init__(self):
        ndim = int(self.layer.ndim)
        s = int(self.spectral_axis_index)
        if not 0 <= s < ndim:
            raise RoiError(f"Spectral axis {s} is out of range for image {self.layer.name!r} "
                           f"with {ndim} axes.")
        if ndim < 3:
            raise RoiError(f"Image {self.layer.name!r} has {ndim} axes: a spectral stack needs "
                           "a spectral axis and two spatial axes (Y, X).")

    @property
    def name(self) -> str:
        return str(self.layer.name)

    @property
    def ndim(self) -> int:
        return int(self.layer.ndim)

    @cached_property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in _plain_data(self.layer).shape)

    @property
    def n_channels(self) -> int:
        return self.shape[self.spectral_axis_index]

    @property
    def spatial_dims(self) -> tuple[int, ...]:
        """Data axes of the image that are spatial (all but the spectral one)."""
        return tuple(i for i in range(self.ndim) if i != self.spectral_axis_index)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[i] for i in self.spatial_dims)

    @property
    def plane_dims(self) -> tuple[int, ...]:
        """Spatial axes other than the Y-X plane (Z, T ...)."""
        return self.spatial_dims[:-2]

    @property
    def yx_dims(self) -> tuple[int, int]:
        return self.spatial_dims[-2], self.spatial_dims[-1]

    def spectral_values(self):
        """``(values, unit)`` of the spectral axis from the layer's metadata
        (``spectral_values``, ``spectral_unit``); ``(None, None)`` when absent or
        when the values do not fit the channels (one finite value per channel)."""
        meta = self.layer.metadata if isinstance(self.layer.metadata, dict) else {}
        values, unit = meta.get("spectral_values"), meta.get("spectral_unit")
        if values is None:
            return None, None
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.shape != (self.n_channels,) or not np.isfinite(values).all():
            return None, None
        return values, (str(unit) if unit else None)

    @cached_property
    def affine(self) -> np.ndarray:
        return layer_affine(self.layer)

    def mapping_from(self, layer) -> tuple[np.ndarray, tuple[int, ...]]:
        """Affine map from ``layer``'s data coordinates to the image's data coordinates.

        Returns
        -------
        M : ndarray (ndim, layer.ndim + 1)
            ``image_coords = M @ [layer_coords, 1]``; coordinates along image axes
            the layer does not cover come out as if the layer sat at world 0 there
            (they are not used).
        covered : tuple of int
            Image axes the layer has coordinates for (its last axes line up with
            the image's last axes).
        """
        D, d = self.ndim, int(layer.ndim)
        off = D - d
        embed = np.zeros((D + 1, d + 1))
        for j in range(d):
            if j + off >= 0:
                embed[j + off, j] = 1.0
        embed[D, d] = 1.0
        inv = np.linalg.inv(self.affine)
        covered = tuple(range(max(off, 0), D))
        free = list(range(max(off, 0)))
        if free and np.abs(inv[np.ix_(list(covered), free)]).max() > _TOL:
            raise RoiError(
                f"Layer {layer.name!r} has fewer axes than image {self.name!r}, and the image's "
                "transform mixes its leading axes with the others (a rotation or shear across "
                "them), so the layer's position in the image is not defined. Give the layer as "
                "many axes as the image.")
        M = inv @ embed @ layer_affine(layer)
        return M[:D], covered


# -- shapes --------------------------------------------------------------------------------
def _shape_plane(layer, i, q, grid, covered):
    """Plane index per covered plane axis of shape ``i`` (image coordinates ``q``)."""
    plane = {}
    for ax in grid.plane_dims:
        if ax not in covered:
            continue
        vals = q[:, ax]
        if np.ptp(vals) > 1e-3:
            raise RoiError(
                f"Shape {i + 1} of layer {layer.name!r} is not drawn on a single plane of image "
                f"{grid.name!r} (its axis-{ax} coordinate runs from {vals.min():g} to "
                f"{vals.max():g}). Draw ROIs in the 2-D view, on one plane.")
        idx = int(np.floor(vals.mean() + 0.5))
        if not 0 <= idx < grid.shape[ax]:
            raise RoiError(
                f"Shape {i + 1} of layer {layer.name!r} lies on plane {idx} of axis {ax}, but "
                f"image {grid.name!r} has {grid.shape[ax]} planes there (0 .. "
                f"{grid.shape[ax] - 1}). Draw it on a plane of the image.")
        plane[ax] = idx
    return plane


def _polygon_area(yx):
    y, x = yx[:, 0], yx[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _no_pixel_text(layer, i, yx, yx_shape, grid) -> str:
    """Why shape ``i`` (its Y-X vertices ``yx`` in image pixels) selects no pixel: it
    lies off the image, or it is on the image but too small to hold a pixel centre."""
    lo, hi = yx.min(axis=0), yx.max(axis=0)
    on_image = all(h > -0.5 and low < n - 0.5 for low, h, n in zip(lo, hi, yx_shape,
                                                                   strict=True))
    if not on_image:
        return (f"Shape {i + 1} of layer {layer.name!r} lies outside image {grid.name!r}; "
                "draw it over the image.")
    size = " x ".join(f"{float(v):.2g}" for v in hi - lo)
    return (f"Shape {i + 1} of layer {layer.name!r} lies on image {grid.name!r} but covers "
            f"no pixel ({size} pixels, holding no pixel centre); draw it larger, over at "
            "least one whole pixel.")


def _snap_to_centres(yx: np.ndarray) -> np.ndarray:
    """Pixel coordinates within 1e-4 px of a pixel centre put on it: napari keeps shapes
    in float32, so an edge drawn on a row of centres in um comes back ~1e-7 px off."""
    whole = np.round(yx)
    return np.where(np.abs(yx - whole) < 1e-4, whole, yx)


def shape_masks(layer, grid: ImageGrid, *, index: int | None = None) -> list[np.ndarray]:
    """Boolean masks, on the image's spatial grid, of the shapes of a Shapes layer.

    Parameters
    ----------
    layer : napari.layers.Shapes
    grid : ImageGrid
    index : int, optional
        Only this shape (0-based).  Default: every shape, in layer order.

    Returns
    -------
    list of ndarray of bool, each of shape ``grid.spatial_shape``

    Raises
    ------
    RoiError
        No shapes, a line or path, a shape off the Y-X plane, on a plane outside the
        image, or not overlapping the image.
    """
    from napari.layers import Shapes

    n = int(layer.nshapes)
    if n == 0:
        raise RoiError(f"Shapes layer {layer.name!r} holds no shapes: draw a rectangle, "
                       "polygon or ellipse over the region first.")
    if index is None:
        indices = list(range(n))
    else:
        if not 0 <= int(index) < n:
            raise RoiError(f"Shapes layer {layer.name!r} has {n} shape(s); shape {int(index) + 1} "
                           "does not exist.")
        indices = [int(index)]
    M, covered = grid.mapping_from(layer)
    ydim, xdim = grid.yx_dims
    if ydim not in covered or xdim not in covered:
        raise RoiError(f"Shapes layer {layer.name!r} has too few axes to cover the Y-X plane of "
                       f"image {grid.name!r}.")
    types = list(layer.shape_type)
    polys, planes = [], []
    for i in indices:
        if types[i] not in AREA_SHAPES:
            raise RoiError(f"Shape {i + 1} of layer {layer.name!r} is a {types[i]}, which "
                           "encloses no area; use a rectangle, polygon or ellipse as ROI.")
        v = np.asarray(layer.data[i], dtype=np.float64)
        q = (M @ np.column_stack([v, np.ones(len(v))]).T).T
        planes.append(_shape_plane(layer, i, q, grid, covered))
        yx = q[:, [ydim, xdim]]
        if _polygon_area(yx) < 1e-6:
            raise RoiError(
                f"Shape {i + 1} of layer {layer.name!r} has no area in the Y-X plane of image "
                f"{grid.name!r}; it was probably drawn while other axes were displayed. Show the "
                "image's Y and X axes and draw it again.")
        polys.append(_snap_to_centres(yx))
    yx_shape = (grid.shape[ydim], grid.shape[xdim])
    flat = Shapes(polys, shape_type=[types[i] for i in indices]).to_masks(mask_shape=yx_shape)
    spatial = grid.spatial_dims
    masks = []
    for i, m2d, plane, yx in zip(indices, flat, planes, polys, strict=True):
        if not m2d.any():
            raise RoiError(_no_pixel_text(layer, i, yx, yx_shape, grid))
        mask = np.zeros(grid.spatial_shape, dtype=bool)
        sel = tuple(plane.get(ax, slice(None)) for ax in spatial[:-2]) + (slice(None),) * 2
        mask[sel] = m2d
        masks.append(mask)
    return masks


def shapes_roi(layer, grid: ImageGrid, *, index: int | None = None) -> np.ndarray:
    """One ROI from a Shapes layer: shape ``index``, or the union of all its shapes."""
    masks = shape_masks(layer, grid, index=index)
    out = masks[0].copy()
    for m in masks[1:]:
        out |= m
    return out


# -- labels --------------------------------------------------------------------------------
def _axis_matches(M, covered, layer, grid):
    """For each layer axis, the image axis it maps to (or None), with scale and offset."""
    D, d = M.shape[0], M.shape[1] - 1
    lin = M[:, :d]
    match: dict[int, tuple[int, float, float]] = {}
    for j in range(d):
        col = lin[:, j].copy()
        col[[i for i in range(D) if i not in covered]] = 0.0
        nz = np.flatnonzero(np.abs(col) > _TOL)
        if len(nz) > 1:
            raise RoiError(
                f"Labels layer {layer.name!r} is rotated or sheared relative to image "
                f"{grid.name!r}; label images are matched axis by axis. Resample the labels "
                "onto the image's grid first.")
        if len(nz) == 1:
            i = int(nz[0])
            if i in [m[0] for m in match.values()]:
                raise RoiError(f"Labels layer {layer.name!r}: two of its axes map onto image axis "
                               f"{i}; its transform does not fit image {grid.name!r}.")
            match[j] = (i, float(col[i]), float(M[i, d]))
    return match


def _collapse(lab, axis, layer):
    """Collapse a label image along ``axis``: any non-zero label; conflicts refused."""
    nz = lab != 0
    hi = lab.max(axis=axis)
    lo = np.where(nz, lab, np.expand_dims(hi, axis)).min(axis=axis)
    any_nz = nz.any(axis=axis)
    clash = any_nz & (lo != hi)
    if clash.any():
        where = tuple(int(v[0]) for v in np.nonzero(clash))
        raise RoiError(f"Labels layer {layer.name!r} has different labels painted on the same "
                       f"pixel in different channels (e.g. at {where}). A label ROI applies to "
                       "every channel: paint each pixel with one label only.")
    return np.where(any_nz, hi, 0)


def _check_spectral_axis(lab, match, s, layer, grid):
    """Refuse a label axis lying over the image's spectral axis that is neither of
    length 1 nor one label plane per channel: napari lines layers up by their last
    axes, so a ``(Z, Y, X)`` segmentation over a ``(Z, C, Y, X)`` image lies over
    ``(C, Y, X)``, and collapsing it would put every plane's labels on every plane."""
    if any(j not in match and lab.shape[j] != 1 for j in range(lab.ndim)):
        return  # more axes than the image: refused as such by the caller
    for j, (i, scale, offset) in match.items():
        n = lab.shape[j]
        if i != s or n == 1:
            continue
        if n == grid.n_channels and np.allclose(scale * np.arange(n) + offset, np.arange(n),
                                                atol=1e-3):
            continue
        raise RoiError(
            f"Labels layer {layer.name!r} (shape {lab.shape}) lies with its axis {j} "
            f"({n} long) over the spectral axis of image {grid.name!r} ({grid.n_channels} "
            "channels): napari lines layers up by their last axes, so e.g. a (Z, Y, X) "
            "label image over a (Z, C, Y, X) image lies over (C, Y, X). Give the labels a "
            "length-1 axis for the channels (shape (Z, 1, Y, X)), or paint on 'New seed "
            "layer'.")


def labels_image(layer, grid: ImageGrid) -> np.ndarray:
    """A Labels layer as an integer label image on the image's spatial grid.

    Parameters
    ----------
    layer : napari.layers.Labels
    grid : ImageGrid

    Returns
    -------
    ndarray of int, shape ``grid.spatial_shape``
        0 where no label covers a pixel centre.

    Raises
    ------
    RoiError
        Empty layer, labels outside the image, a rotated layer, one label image
        with conflicting labels across channels, or a label axis over the spectral
        axis with another number of planes than the image's channels.
    """
    lab = np.asarray(_plain_data(layer))
    if lab.dtype.kind not in "iub":
        raise RoiError(f"Labels layer {layer.name!r} holds {lab.dtype} values; labels must be "
                       "integers.")
    if not lab.any():
        raise RoiError(f"Labels layer {layer.name!r} is empty (every pixel is 0): paint labels "
                       "over the regions of your components, or choose another layer.")
    M, covered = grid.mapping_from(layer)
    d = lab.ndim
    match = _axis_matches(M, covered, layer, grid)
    s = grid.spectral_axis_index
    _check_spectral_axis(lab, match, s, layer, grid)
    # axes mapped to nothing (extra leading axes) or to the spectral axis are collapsed
    for j in sorted((j for j in range(d) if j not in match or match[j][0] == s), reverse=True):
        if j not in match and lab.shape[j] != 1:
            raise RoiError(f"Labels layer {layer.name!r} has more axes than image {grid.name!r} "
                           f"(shape {lab.shape}); give it the image's spatial axes.")
        lab = _collapse(lab, j, layer)
        match = {(jj - 1 if jj > j else jj): v for jj, v in match.items() if jj != j}
    # nearest-neighbour resampling, axis by axis, onto the covered spatial axes
    index, valid, dims = [], [], []
    for j in range(lab.ndim):
        i, scale, offset = match[j]
        q = np.arange(grid.shape[i], dtype=np.float64)
        p = np.floor((q - offset) / scale + 0.5).astype(np.intp)
        ok = (p >= 0) & (p < lab.shape[j])
        index.append(np.clip(p, 0, lab.shape[j] - 1))
        valid.append(ok)
        dims.append(i)
    order = np.argsort(dims)
    lab = lab[np.ix_(*index)]
    ok = np.ones(lab.shape, dtype=bool)
    for j, v in enumerate(valid):
        shape = [1] * lab.ndim
        shape[j] = v.size
        ok &= v.reshape(shape)
    lab = np.where(ok, lab, 0).transpose(order)
    dims = [dims[j] for j in order]
    # broadcast over spatial axes the layer lacks
    spatial = grid.spatial_dims
    shape = [grid.shape[i] if i in dims else 1 for i in spatial]
    out = np.broadcast_to(lab.reshape(shape), grid.spatial_shape).copy()
    if not out.any():
        raise RoiError(f"None of the labels of layer {layer.name!r} lies on image "
                       f"{grid.name!r}; check the layers' positions (scale / translate).")
    return out


def label_colors(layer, ids) -> list[str]:
    """The colours (``#RRGGBB``) a Labels layer paints labels ``ids`` in, so that
    components made from them keep the colour the user sees."""
    from matplotlib.colors import to_hex

    out = []
    for i in ids:
        rgba = np.asarray(layer.get_color(int(i)), dtype=np.float64).ravel()
        out.append(to_hex(np.clip(rgba[:3], 0, 1)).upper())
    return out


def negative_label_ids(layer) -> list[int]:
    """The negative values of a Labels layer, ascending: no label id (ids start at 1,
    0 is unlabelled), so they make no component; some tools write -1 for "none"."""
    data = np.asarray(_plain_data(layer))
    if data.dtype.kind != "i":
        return []
    values = np.unique(data)
    return [int(v) for v in values[values < 0]]


def labels_off_grid(layer, on_grid) -> list[int]:
    """The labels of a Labels layer that cover no pixel of the image (``on_grid``: the
    ids :func:`labels_image` found on the image's grid), ascending."""
    present = set(label_ids(np.asarray(_plain_data(layer))))
    return sorted(present - {int(v) for v in on_grid})


def label_ids(labels: np.ndarray) -> list[int]:
    """The label ids present in a label image, ascending, 0 left out."""
    ids = np.unique(np.asarray(labels))
    return [int(v) for v in ids if v > 0]

