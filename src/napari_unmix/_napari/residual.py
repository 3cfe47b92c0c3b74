"""The residual map: how much of every pixel's spectrum the fit leaves unexplained.

For pixel ``p`` with spectrum ``x`` (the raw data), maps ``w`` and spectra ``H``:

    relative residual = ||x - w H|| / ||x||

``x`` is the data the fit saw: with the negative-value policy ``"offset"`` the raw
values plus the offset the run added (``summary.negative.offset``, per plane for a
series, :func:`fit_offset`), and a run fitted on the processed data (background
subtracted, smoothed: ``summary.fit_data == "processed"``) is compared with that data
(:func:`napari_unmix.core.residuals.fitted_data`), so that the map agrees with the
run's relative error.
0 where the components explain the pixel fully, 1 where they explain nothing (an
unexpected species, a burnt spot, a missing component).  Pixels whose spectrum is
all zero get NaN.  A series result is fitted plane by plane: each plane's pixels
against that plane's spectra (per-plane runs) or the shared basis.

It is computed in the run's worker thread (:func:`with_residual`, so the dock never
waits for it), over chunks of pixels, and shown as one optional image layer per run
(:func:`show_residual`, "magma", from 0 to the 99.5th percentile), placed like the
maps.  Only non-negative modes (NNMF, NNLS) reconstruct the data; PCA scores do not
(its data are centred and scaled), so there is no residual map for PCA.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RESIDUAL_ROLE", "ResidualMaps", "fit_offset", "relative_residual",
           "remove_residuals", "show_residual", "with_residual"]

#: ``metadata[META_KEY]["role"]`` of a residual layer.
RESIDUAL_ROLE = "residual-map"
_CHUNK = 65536  # pixels per chunk (a few MB for 64 channels)


@dataclass(eq=False)
class ResidualMaps:
    """A run's value with its residual map (``relative``: the spatial shape, or None
    when the mode does not reconstruct the data)."""

    value: object
    relative: np.ndarray | None


def _offset_of(summary) -> float:
    offset = getattr(getattr(summary, "negative", None), "offset", None)
    return float(offset) if offset else 0.0


def fit_offset(result):
    """What the negative-value policy ``"offset"`` added to the data ``result`` was
    fitted on (0.0 for other policies): a float, or for a series result (a summary
    with ``planes``) one value per plane, as an array."""
    summary = getattr(result, "summary", None)
    planes = getattr(summary, "planes", None)
    if planes:
        return np.array([_offset_of(getattr(p, "fit", None)) for p in planes])
    return _offset_of(summary)


def _pixels(stack, spectral_axis: int):
    data = stack[0] if isinstance(stack, list) else stack
    return np.moveaxis(data, int(spectral_axis), -1)


def relative_residual(stack, spectral_axis: int, result, spatial_shape, *,
                      labels=None) -> np.ndarray:
    """The per-pixel relative residual of ``result`` on ``stack`` (see the module
    documentation), shaped ``spatial_shape``.

    ``result`` is an :class:`~napari_unmix.core.result.UnmixResult`; one with
    ``arrays["plane_H"]`` (a per-plane series) is evaluated plane by plane along the
    first spatial axis.  ``labels``: the run's label image, for a run fitted on
    processed data whose background came from labelled pixels.
    """
    if getattr(result.summary, "fit_data", "raw") == "processed" \
            and result.config is not None:
        return _processed_residual(stack, spectral_axis, result, spatial_shape, labels)
    cube = _pixels(stack, spectral_axis)
    n_channels = cube.shape[-1]
    flat_shape = (int(np.prod(spatial_shape)), n_channels)
    W = np.asarray(result.W, dtype=np.float64)
    plane_H = (result.arrays or {}).get("plane_H") if hasattr(result, "arrays") else None
    per_plane = plane_H is not None and len(spatial_shape) > 2
    offset = fit_offset(result)  # the fit saw raw + offset
    plane_offsets = np.ndim(offset) > 0 and len(spatial_shape) > 2
    n_per_plane = (int(np.prod(spatial_shape[1:])) if per_plane or plane_offsets
                   else flat_shape[0])
    out = np.empty(flat_shape[0], dtype=np.float64)
    flat = cube.reshape(flat_shape) if isinstance(cube, np.ndarray) else None
    for start in range(0, flat_shape[0], _CHUNK):
        stop = min(start + _CHUNK, flat_shape[0])
        if flat is not None:
            X = np.asarray(flat[start:stop], dtype=np.float64)
        else:  # a lazy stack: read the chunk's pixels
            idx = np.unravel_index(np.arange(start, stop), tuple(spatial_shape))
            X = np.asarray(cube.vindex[idx] if hasattr(cube, "vindex") else cube[idx],
                           dtype=np.float64)
        planes = np.arange(start, stop) // n_per_plane
        if plane_offsets:  # (never in place: X may be a view of the image)
            X = X + np.asarray(offset, dtype=np.float64)[planes][:, None]
        elif np.ndim(offset) == 0 and offset:
            X = X + offset
        if per_plane:
            H = np.asarray(plane_H, dtype=np.float64)[planes]
            fit = np.einsum("pk,pkc->pc", W[start:stop], H)
        else:
            fit = W[start:stop] @ np.asarray(result.H, dtype=np.float64)
        num = np.linalg.norm(X - fit, axis=1)
        den = np.linalg.norm(X, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = np.where(den > 0, num / den, np.nan)
    return out.reshape(tuple(spatial_shape))


def _processed_residual(stack, spectral_axis, result, spatial_shape, labels) -> np.ndarray:
    """:func:`relative_residual` of a run fitted on the processed data: the data made
    again from the image by the run's config (in memory: such runs are)."""
    from ..core.residuals import fitted_data

    X = np.asarray(_pixels(stack, spectral_axis), dtype=np.float64).reshape(
        -1, np.shape(result.H)[1])
    Xf = np.asarray(fitted_data(result, X, spatial_shape, labels=labels), dtype=np.float64)
    num = np.linalg.norm(Xf - np.asarray(result.W, dtype=np.float64)
                         @ np.asarray(result.H, dtype=np.float64), axis=1)
    den = np.linalg.norm(Xf, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan).reshape(tuple(spatial_shape))


def with_residual(func, stack, *, spectral_axis: int, spatial_shape, reference=None):
    """``func(callback=...)`` that also computes the residual map of its value, in the
    same (worker) thread; returns a :class:`ResidualMaps`.  A series value is taken
    as a whole (``as_result(reference=reference)``)."""
    from ..core.modes import MODES

    def run(callback=None):
        value = func(callback=callback)
        result = value.as_result(reference=reference) if hasattr(value, "as_result") else value
        spec = MODES.get(result.mode)
        if spec is not None and not spec.non_negative:
            return ResidualMaps(value, None)
        labels = getattr(func, "keywords", {}).get("labels")   # the run's label image
        return ResidualMaps(value, relative_residual(stack, spectral_axis, result,
                                                     spatial_shape, labels=labels))

    return run


def remove_residuals(viewer, *, source_image: str, source_uid: str | None = None,
                     spare_owners=frozenset()) -> int:
    """Remove the residual layers of ``source_image``'s earlier runs (the image of
    identity ``source_uid``, when given; not those the user renamed, nor those of the
    sessions ``spare_owners``); returns how many."""
    from .layers import remove_unrenamed

    return remove_unrenamed(viewer, role=RESIDUAL_ROLE, source_image=source_image,
                            source_uid=source_uid, spare_owners=spare_owners)


def show_residual(viewer, relative, *, grid, number: int, source_image: str,
                  owner: str | None = None):
    """Add the residual map of run ``number`` as an image layer over the image of
    ``grid``, placed like the maps, on top (hide it to see the composite); ``owner``:
    the session that made it."""
    from .layers import META_KEY, placement

    data = np.asarray(relative, dtype=np.float32)
    kwargs, keep_axis = placement(grid.layer, grid.spectral_axis_index)
    if keep_axis:
        data = np.expand_dims(data, int(grid.spectral_axis_index))
    finite = data[np.isfinite(data)]
    hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    name = f"run {int(number)} · residual"
    return viewer.add_image(
        data, name=name, colormap="magma", blending="translucent",
        contrast_limits=(0.0, hi if hi > 0 else 1.0),
        metadata={META_KEY: {"role": RESIDUAL_ROLE, "run": int(number), "name": name,
                             "source_image": source_image,
                             "source_uid": str(grid.layer.unique_id), "owner": owner}},
        **kwargs)
