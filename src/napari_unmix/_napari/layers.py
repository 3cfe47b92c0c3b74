"""An :class:`~napari_unmix.core.result.UnmixResult` as napari image layers.

Each component map (a column of ``W``) becomes one image layer, named after the
component.  Together they are the false-colour composite:

NNMF and NNLS maps (non-negative abundances)
    colormap from black to the component's colour, ``additive`` blending, contrast
    limits from 0 (no abundance is black) to the 99.5th percentile of the map's
    finite values, so that a few very bright pixels do not darken the rest.
    Where components overlap, their colours add up (orange + sky blue -> white).
    Maps of components flagged as background start hidden: spread over the whole
    image, they would tint the composite everywhere.
PCA maps (signed scores)
    a diverging colormap per component, its colour's complement (negative) - black
    (0) - the component's colour (positive), the colour of its loading curve in the
    spectra dock; limits symmetric about 0 (the 99.5th percentile of ``|score|``).  A sum of
    signed maps means nothing, so only the first principal component is visible
    after a run; show the others one at a time.

Placement
    The maps lie exactly over the image they were computed from: they take its
    scale and translate (and rotate / shear / affine), its axis labels and units,
    without the spectral axis.
    When the spectral axis is the image's first axis, the maps simply have the
    image's spatial axes (they line up with the image's last axes, as napari
    aligns layers).  Otherwise a length-1 axis stands in for the spectral axis,
    stretched over all channels, so that the maps show on every channel.

Metadata and replacing
    Every layer made here carries, like the layers of an opened result file (see
    :mod:`.reader`), what the writers read: :data:`RESULT_KEY` (the whole
    :class:`UnmixResult`, shared, not copied), ``component_index``,
    ``component_name``, ``spatial_shape`` and ``color``; and
    ``metadata["napari_unmix"]``, a dict with ``role = "component-map"``,
    ``mode``, ``source_image`` (name of the analysed image), ``source_uid`` (its
    identity, napari's ``unique_id``: the maps of an image are found by it, so that
    renaming the image keeps them its own), ``run`` (the run's
    number, :mod:`.run_history`), ``name`` (the name it was given: a layer whose
    name differs was renamed by the user) and ``owner`` (which dock's session made
    it: a dock never replaces the maps of another dock that is still open on the
    same viewer).  The maps of a run seeded from label ids also carry its label image
    (:data:`LABELS_KEY`, shared, not copied; on the planes fitted for a z / t series),
    which the result-folder writer keeps as ``labels.tif``.
    :func:`show_result` replaces the maps
    of an earlier result for the same image (or the layers it is given), so that
    re-running does not pile layers up.

This module is the schema of those layers (:data:`META_KEY`, :data:`RESULT_KEY`,
:data:`ROLE`, :func:`map_layer_kwargs`); the reader and the writers import it, and
it imports neither.
"""

from __future__ import annotations

import numpy as np

from ..core.colors import default_colors, hex_to_rgb
from ..core.modes import MODES

__all__ = ["LABELS_KEY", "META_KEY", "RESULT_KEY", "ROLE", "component_styles", "contrast_limits",
           "remove_unrenamed",
           "is_signed", "made_for", "map_layer_kwargs", "placement", "result_layers",
           "remove_result_layers",
           "run_steps", "show_result", "show_result_steps"]

#: Key of napari-unmix's information in a result layer's metadata.
META_KEY = "napari_unmix"
#: Layer-metadata key of the :class:`~napari_unmix.core.UnmixResult` of a map layer.
RESULT_KEY = "unmix_result"
#: Layer-metadata key of the label image of a run seeded from label ids (``RoiLabel``):
#: the labels the result was made with (its ``summary.labels_sha256``).
LABELS_KEY = "unmix_labels"
#: ``metadata[META_KEY]["role"]`` of a component map layer.
ROLE = "component-map"

_PERCENTILE = 99.5
_SIGNED = ((0.26, 0.58, 1.0, 1.0), (0.0, 0.0, 0.0, 1.0), (1.0, 0.33, 0.24, 1.0))


def _colormap(color):
    from napari.utils.colormaps import Colormap

    r, g, b = hex_to_rgb(color)
    return Colormap([[0.0, 0.0, 0.0, 1.0], [r, g, b, 1.0]], name=f"unmix {color}")


def _signed_colormap(color=None):
    """A diverging colormap: the complement of ``color`` (negative) - black (0) -
    ``color`` (positive), so that a score map matches its loading curve; blue-black-red
    without a colour."""
    from napari.utils.colormaps import Colormap

    if color is None:
        return Colormap(list(_SIGNED), controls=[0.0, 0.5, 1.0], name="unmix signed")
    r, g, b = hex_to_rgb(color)
    neg = _complement((r, g, b))
    return Colormap([[*neg, 1.0], [0.0, 0.0, 0.0, 1.0], [r, g, b, 1.0]],
                    controls=[0.0, 0.5, 1.0], name=f"unmix signed {color}")


def _complement(rgb) -> tuple:
    """The colour of opposite hue with the same lightness and saturation."""
    import colorsys

    h, lightness, sat = colorsys.rgb_to_hls(*rgb)
    if sat < 0.15:  # a grey has no opposite hue: a cool blue then
        return (0.26, 0.58, 1.0)
    return colorsys.hls_to_rgb((h + 0.5) % 1.0, lightness, sat)


def contrast_limits(values, *, signed: bool = False) -> tuple[float, float]:
    """Display range of one map.

    Non-negative maps: ``(0, p)`` with ``p`` the 99.5th percentile of the finite
    values (the maximum when that percentile is 0).  Signed maps: ``(-a, a)`` with
    ``a`` that percentile of ``|values|``.  A map without a positive range gets
    ``(0, 1)`` (or ``(-1, 1)``) so napari can still show it.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0) if signed else (0.0, 1.0)
    if signed:
        a = float(np.percentile(np.abs(v), _PERCENTILE)) or float(np.abs(v).max())
        return (-a, a) if a > 0 else (-1.0, 1.0)
    hi = float(np.percentile(v, _PERCENTILE))
    if not hi > 0:
        hi = float(v.max())
    lo = min(0.0, float(v.min()))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def placement(image_layer, spectral_axis_index: int) -> tuple[dict, bool]:
    """Transform keywords (and axis labels, units) for map layers over
    ``image_layer``; and whether to keep a length-1 spectral axis."""
    ndim = int(image_layer.ndim)
    s = int(spectral_axis_index)
    scale = np.asarray(image_layer.scale, dtype=np.float64)
    translate = np.asarray(image_layer.translate, dtype=np.float64)
    plain = (np.allclose(np.asarray(image_layer.rotate), np.eye(ndim))
             and np.allclose(np.asarray(image_layer.shear), 0)
             and np.allclose(np.asarray(image_layer.affine.affine_matrix), np.eye(ndim + 1)))
    labels = tuple(str(v) for v in image_layer.axis_labels)
    units = tuple(str(u) for u in image_layer.units)
    if s == 0 and plain:
        return {"scale": scale[1:], "translate": translate[1:], "axis_labels": labels[1:],
                "units": units[1:]}, False
    n_channels = int(image_layer.data.shape[s] if not getattr(image_layer, "multiscale", False)
                     else image_layer.data[0].shape[s])
    scale = scale.copy()
    translate = translate.copy()
    # one pixel covering channel coordinates -0.5 .. n-0.5
    translate[s] += scale[s] * (n_channels - 1) / 2.0
    scale[s] *= n_channels
    kw = {"scale": scale, "translate": translate, "axis_labels": labels, "units": units}
    if not plain:
        kw.update(rotate=np.asarray(image_layer.rotate), shear=np.asarray(image_layer.shear),
                  affine=np.asarray(image_layer.affine.affine_matrix))
    return kw, True


def is_signed(mode: str) -> bool:
    """Whether a mode's maps are signed scores (PCA): modes outside the non-negative
    ones (``ModeSpec.non_negative``)."""
    spec = MODES.get(mode)
    return spec is not None and not spec.non_negative


def component_styles(result) -> tuple[list, list]:
    """``(colors, background)`` of a result's components, from the config it was made
    with (:attr:`UnmixResult.config`): the colour each component was given (``None``
    where none was) and its background flag.  A result without a (readable) config
    gives ``None`` colours and no background."""
    k = result.n_components
    try:
        config = result.config
    except (ValueError, TypeError, KeyError):  # a config this version cannot read
        config = None
    comps = list(config.components) if config is not None else []
    colors = [c.color for c in comps[:k]] + [None] * (k - len(comps))
    background = [c.background for c in comps[:k]] + [False] * (k - len(comps))
    return colors, background


def _sample(data, most: int = 1 << 20):
    """At most about ``most`` values of a lazy map, on a regular grid (for its contrast)."""
    step = max(1, int(np.ceil((data.size / most) ** (1.0 / max(data.ndim, 1)))))
    return np.asarray(data[tuple(slice(None, None, step) for _ in data.shape)])


def _uid(layer) -> str | None:
    uid = getattr(layer, "unique_id", None)
    return None if uid is None else str(uid)


def made_for(meta, *, source_image=None, source_uid=None) -> bool:
    """Whether layer metadata ``meta`` (``metadata[META_KEY]``) belongs to the image of
    identity ``source_uid`` (else, or for layers without one, of name
    ``source_image``); True when neither is given."""
    if source_uid is not None and meta.get("source_uid") is not None:
        return meta["source_uid"] == source_uid
    return source_image is None and source_uid is None or (
        source_image is not None and meta.get("source_image") == source_image)


def map_layer_kwargs(result, index: int, *, color, spatial_shape, image_layer=None,
                     spectral_axis_index: int = 0, source_image: str = "",
                     background: bool | None = None, labels=None) -> tuple:
    """Data and ``add_image`` keywords of the layer of component ``index``.

    ``background``: whether the component is a background one (its map starts
    hidden); ``None`` reads it from the result's config.  ``labels``: the label image
    of a run seeded from label ids, put in the metadata (:data:`LABELS_KEY`).

    Returns
    -------
    data : ndarray
        The map, on the image's spatial grid (with a length-1 spectral axis when
        needed, see the module documentation).
    kwargs : dict
        ``name``, ``colormap``, ``blending``, ``contrast_limits``, ``visible``,
        ``metadata`` and the placement keywords.
    """
    signed = is_signed(result.mode)
    if background is None:
        background = component_styles(result)[1][index]
    column = result.W[:, index]
    lazy = hasattr(column, "dask")  # a chunked run: the map stays lazy, read on demand
    data = column.reshape(tuple(spatial_shape)) if lazy else np.asarray(column).reshape(
        tuple(spatial_shape))
    kwargs: dict = {}
    if image_layer is not None:
        place, keep_axis = placement(image_layer, spectral_axis_index)
        if keep_axis:
            data = np.expand_dims(data, int(spectral_axis_index))
        kwargs.update(place)
    name = result.component_names[index]
    kwargs.update(
        name=name,
        colormap=_signed_colormap(color) if signed else _colormap(color),
        blending="additive",
        contrast_limits=contrast_limits(_sample(data) if lazy else data, signed=signed),
        visible=(not signed or index == 0) and not background,
        metadata={RESULT_KEY: result, "component_index": int(index), "component_name": name,
                  "spatial_shape": tuple(int(v) for v in spatial_shape), "color": color,
                  META_KEY: {"role": ROLE, "mode": result.mode, "source_image": source_image,
                             "source_uid": _uid(image_layer)}},
    )
    if labels is not None:
        kwargs["metadata"][LABELS_KEY] = labels
    return data, kwargs


def result_layers(viewer, *, source_image: str | None = None,
                  source_uid: str | None = None) -> list:
    """The component-map layers in ``viewer`` (of one source image, if given: by its
    identity ``source_uid``, else by name, see :func:`made_for`)."""
    out = []
    for layer in list(viewer.layers):
        meta = layer.metadata.get(META_KEY) if isinstance(layer.metadata, dict) else None
        if not isinstance(meta, dict) or meta.get("role") != ROLE:
            continue
        if made_for(meta, source_image=source_image, source_uid=source_uid):
            out.append(layer)
    return out


def remove_result_layers(viewer, *, source_image: str | None = None) -> int:
    """Remove the component maps of ``source_image`` (all, if None); return how many."""
    old = result_layers(viewer, source_image=source_image)
    for layer in old:
        viewer.layers.remove(layer)
    return len(old)


def _update(layer, data, kwargs) -> None:
    """Give an existing map layer new data and display settings (no new layer)."""
    layer.data = data
    for key in ("scale", "translate", "rotate", "shear"):
        if key in kwargs and not np.allclose(getattr(layer, key), kwargs[key]):
            setattr(layer, key, kwargs[key])
    if "affine" in kwargs and not np.allclose(layer.affine.affine_matrix, kwargs["affine"]):
        layer.affine = kwargs["affine"]
    for key in ("axis_labels", "units"):
        if key in kwargs and tuple(map(str, getattr(layer, key))) != tuple(kwargs[key]):
            setattr(layer, key, kwargs[key])
    layer.metadata = kwargs["metadata"]  # drops the reference to the old result
    layer.name = kwargs["name"]
    layer.colormap = kwargs["colormap"]
    lo, hi = kwargs["contrast_limits"]
    finite = np.asarray(data)[np.isfinite(data)]
    if finite.size:  # the slider spans the data, as for a new layer
        lo_d, hi_d = float(finite.min()), float(finite.max())
        layer.contrast_limits_range = (min(lo, lo_d), max(hi, hi_d))
    else:
        layer.contrast_limits_range = (lo, hi)
    layer.contrast_limits = (lo, hi)
    layer.blending = kwargs["blending"]
    layer.visible = kwargs["visible"]


def run_steps(steps):
    """Run a step generator (such as :func:`show_result_steps`) to its end, in one go;
    returns its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def show_result(viewer, result, **kwargs) -> list:
    """Replace the earlier maps of ``source_image`` (or the layers ``replace``) by the
    maps of ``result``, in one go; the keywords and the return value are those of
    :func:`show_result_steps`."""
    return run_steps(show_result_steps(viewer, result, **kwargs))


def show_result_steps(viewer, result, *, spatial_shape, colors=None, image_layer=None,
                      spectral_axis_index: int = 0, source_image: str = "", names=None,
                      replace=None, run: int | None = None, owner: str | None = None,
                      labels=None):
    """Replace the earlier maps of ``source_image`` (or the layers ``replace``) by the
    maps of ``result``, one layer per step.

    A generator: each ``next`` adds or updates one map layer (napari builds a layer's
    visual and controls in about 0.1 s on a slow machine, so the dock gives the event
    loop a pass between layers; :func:`show_result` runs every step at once).

    Layers of the earlier result are reused, in order, where the new map has the
    same shape (their data, name, colours and metadata are replaced; their place in
    the layer list is kept); the others are removed and missing ones added.
    Reusing spares napari from tearing down and building visuals on every run.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
    result : UnmixResult
    spatial_shape : tuple of int
        Spatial shape of the analysed image (``W`` rows in C order).
    colors : sequence of str, optional
        One colour per component; defaults to the default palette.
    image_layer : napari.layers.Image, optional
        The analysed image: the maps take its placement.
    spectral_axis_index : int
        Spectral axis of ``image_layer``.
    source_image : str
        Name of the analysed image, recorded in the layers' metadata and used to
        find the layers to replace.
    names : list of str, optional
        The layers' names (default: the component names).
    replace : list of layers, optional
        The layers to replace (default: every map layer of ``source_image``); ``[]``
        keeps them all.
    run : int, optional
        The run the maps belong to (``metadata[META_KEY]["run"]``, see
        :mod:`.run_history`).
    owner : str, optional
        The session that made them (``metadata[META_KEY]["owner"]``).
    labels : ndarray of int, optional
        The label image of a run seeded from label ids (``metadata[LABELS_KEY]``).

    Returns
    -------
    generator
        Yields after each layer; returns (``StopIteration.value``) the result's
        layers, in component order.
    """
    k = result.n_components
    colors = list(colors) if colors is not None else default_colors(k)
    if len(colors) != k:
        raise ValueError(f"{len(colors)} colour(s) for {k} component(s).")
    background = component_styles(result)[1]
    built = [map_layer_kwargs(result, i, color=colors[i], spatial_shape=spatial_shape,
                              image_layer=image_layer,
                              spectral_axis_index=spectral_axis_index,
                              source_image=source_image, background=background[i],
                              labels=labels)
             for i in range(k)]
    for i, (_, kw) in enumerate(built):
        if names is not None:
            kw["name"] = names[i]
        kw["metadata"][META_KEY].update(run=run, name=kw["name"], owner=owner)
    old = (result_layers(viewer, source_image=source_image, source_uid=_uid(image_layer))
           if replace is None else list(replace))
    keep = [i < k and tuple(lyr.data.shape) == built[i][0].shape for i, lyr in enumerate(old)]
    for lyr, kept in zip(old, keep, strict=True):
        if not kept and lyr in viewer.layers:
            viewer.layers.remove(lyr)
    out = []
    for i, (data, kw) in enumerate(built):
        # a layer the user deleted between two steps is made again
        if i < len(old) and keep[i] and old[i] in viewer.layers:
            _update(old[i], data, kw)
            out.append(old[i])
        else:
            out.append(viewer.add_image(data, **kw))
        yield
    return out


def remove_unrenamed(viewer, *, role: str, source_image: str,
                     source_uid: str | None = None, spare_owners=frozenset()) -> int:
    """Remove the layers of ``role`` made for ``source_image`` (the image of identity
    ``source_uid``, when given: see :func:`made_for`) that still have the name they
    were given (a layer the user renamed is theirs to keep) and whose ``owner`` is
    not one of ``spare_owners`` (another open dock's); returns how many."""
    gone = 0
    for lyr in list(viewer.layers):
        meta = lyr.metadata.get(META_KEY) if isinstance(lyr.metadata, dict) else None
        if (isinstance(meta, dict) and meta.get("role") == role and lyr.name == meta.get("name")
                and meta.get("owner") not in spare_owners
                and made_for(meta, source_image=source_image, source_uid=source_uid)):
            viewer.layers.remove(lyr)
            gone += 1
    return gone
