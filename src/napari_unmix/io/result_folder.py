"""The result folder: one analysis's output set, written whole or not at all.

:func:`write_analysis_outputs` writes the maps TIFF, spectra CSV, composite PNG(s),
``result.npz``, ``config.json`` (when the result holds its analysis config), the
label image of a run seeded from label ids (``labels.tif``, named in ``config.json``'s
``label_image`` with its checksum, so ``napari-unmix run --config`` reads it as it
reads a setup's) and, last, the manifest ``result.json`` into a hidden temporary
folder beside the target, then swaps that folder in as a whole
(:func:`napari_unmix.core._files.atomic_folder`).  So the folder holds either the
earlier set or the new one, never a mix; files of an earlier set that the new one
lacks (the ``composite_z*.png`` of a 3-D result under a 2-D rerun) are gone; an
error, SIGINT or SIGTERM leaves the earlier set as it was and no temporary file.

Because the folder is replaced whole, only a folder that holds nothing but an
output set is replaced (:func:`check_output_folder`): a missing or empty folder, or
an earlier result folder (its ``result.json`` with the format marker, and nothing
but the files of an output set).  A folder with other files (the user's own) is
refused, so they are never removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..core._files import atomic_folder
from .figures import LegendEntry, write_composite_figure
from .results import OUTPUT_NAMES, is_result_bundle, write_result_json
from .setup_files import write_label_image
from .tables import write_maps_tiff, write_spectra_csv
from .zarr_folders import is_zarr_folder

__all__ = ["CONFIG_NAME", "LABELS_NAME", "MAPS_FORMATS", "check_output_folder",
           "foreign_entries", "write_analysis_outputs"]

#: How the maps of an output set are written: ``maps.tif`` (ImageJ TIFF), or the
#: output folder itself is an OME-Zarr image of the maps (the other files beside
#: its zarr metadata).
MAPS_FORMATS = ("tiff", "ome-zarr")

#: The file of the resolved :class:`~napari_unmix.core.config.AnalysisConfig`
#: (``--config`` of the CLI reads it).
CONFIG_NAME = "config.json"

#: The label image of a run seeded from label ids (``RoiLabel``), named in its
#: ``config.json`` (``label_image``).
LABELS_NAME = "labels.tif"

_SET_NAMES = frozenset(OUTPUT_NAMES.values()) | {CONFIG_NAME, LABELS_NAME}
_SET_PATTERN = re.compile(r"composite_z\d+\.png|spectra_z\d+\.csv")
# an OME-Zarr output set: the zarr metadata and the pyramid levels s0, s1 ...
_ZARR_NAMES = frozenset({"zarr.json", ".zattrs", ".zgroup", ".zmetadata"})
_LEVEL = re.compile(r"s\d+")
# hidden temporary files of an interrupted single-file write, and the caches of file
# browsers: part of the folder, removed with it
_DEBRIS = re.compile(r"\.(" + "|".join(re.escape(n) for n in sorted(_SET_NAMES)) +
                     r"|composite_z\d+\.png|spectra_z\d+\.csv)\..*\.tmp|\.DS_Store|Thumbs\.db"
                     r"|desktop\.ini")


def foreign_entries(folder) -> list[str]:
    """The entries of ``folder`` that are no part of an output set, sorted.

    Parameters
    ----------
    folder : str or Path
        An existing folder.

    Returns
    -------
    list of str
        Names (folders with a trailing ``/``); empty when the folder holds only
        files an output set consists of.
    """
    names = []
    for entry in Path(folder).iterdir():
        name = entry.name
        if entry.is_file() and (name in _SET_NAMES or _SET_PATTERN.fullmatch(name)
                                or _DEBRIS.fullmatch(name) or name in _ZARR_NAMES):
            continue
        if entry.is_dir() and _LEVEL.fullmatch(name):
            continue
        names.append(name + ("/" if entry.is_dir() else ""))
    return sorted(names)


def check_output_folder(path) -> None:
    """Refuse a ``path`` that :func:`write_analysis_outputs` must not replace.

    Parameters
    ----------
    path : str or Path

    Raises
    ------
    ValueError
        ``path`` is empty, a file, or a folder holding anything but an earlier
        output set (names up to three of the other entries).
    """
    if not str(path).strip():
        raise ValueError("the output folder is an empty path; name a folder (it is created "
                         "if missing).")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; give a folder (it is created if missing).")
    if not path.is_dir():
        return
    if not any(not _DEBRIS.fullmatch(e.name) for e in path.iterdir()):
        return  # empty, or only a file browser's cache
    others = foreign_entries(path)
    if not others and is_result_bundle(path):
        return
    shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    if others:
        what = f"files that are no part of a napari-unmix result ({shown})"
    elif is_zarr_folder(path) and not (path / "result.json").exists():
        what = "a zarr store that is no napari-unmix result (an image, or another tool's data)"
    else:
        what = ("files of an incomplete napari-unmix result (no readable result.json and "
                "result.npz)")
    raise ValueError(f"{path} holds {what}. A result folder is replaced as a whole, so only "
                     "a new or empty folder or an earlier result folder is written; give "
                     "another folder, or move those files away.")


def write_analysis_outputs(out_dir, result, spatial_shape, *, colors=None, extra=None,
                           pixel_size=None, maps_format="tiff", stack_layout=None,
                           labels=None) -> dict:
    """Write every output of one analysis as the folder ``out_dir``, whole.

    ``maps.tif`` (float32, one named page per component), ``spectra.csv`` (first
    column the spectral axis, or the channel index when it is unknown; for a
    per-plane series, :meth:`SeriesResult.as_result
    <napari_unmix.core.series.SeriesResult.as_result>`, the mean of its planes' matched
    spectra, and every plane's own in ``spectra_zNNN.csv``),
    ``composite.png`` (false colours, with a legend and a scale bar in the pixel
    sizes' unit, pixels drawn as tall as their Y size over their X size:
    :func:`~napari_unmix.io.figures.composite_figure`; for a 3-D spatial shape one
    ``composite_zNNN.png`` per plane, all planes on one contrast stretch; none for
    a 1-D line; for PCA, whose scores are signed and cannot be added, the first
    component's scores alone, positive and negative in two colours:
    :func:`~napari_unmix.core.colors.signed_rgb`), ``result.npz`` (the exact result, readable with
    ``UnmixResult.load``), ``config.json`` (the analysis config, when the result
    holds one: ``napari-unmix run --config`` reads it), ``labels.tif`` (the
    ``labels`` given, named in ``config.json``) and, last, ``result.json``
    (summary, params and the ``extra`` entries).  The set is written into a
    temporary folder and swapped in as a whole (see the module doc).

    Parameters
    ----------
    out_dir : str or Path
        Created with its parents if missing (and the parents removed again if the
        write fails).  An existing folder must hold an earlier output set, or
        nothing (:func:`check_output_folder`); it is replaced whole.
    result : UnmixResult
        Its ``component_names``, ``spectral_values`` and ``spectral_unit`` are used.
    spatial_shape : tuple of int
        Spatial shape of the analysed stack (from ``stack_to_matrix``).
    colors : sequence of str, optional
        Composite colours, one per component (default palette otherwise).
    extra : dict, optional
        Added to ``result.json``.
    pixel_size : tuple (scale, units), optional
        One physical size and unit per spatial axis (the stack's ``scale`` / ``units``
        without the spectral axis): kept in the maps (TIFF resolution, OME-Zarr scale).
    maps_format : {"tiff", "ome-zarr"}, default "tiff"
        ``"ome-zarr"``: the folder is itself an OME-Zarr image of the maps (chunked,
        multiscale, channels named after the components;
        :func:`~napari_unmix.io.ome_zarr_out.write_maps_ome_zarr`) instead of holding
        ``maps.tif``; a dask ``W`` is streamed to it block by block, and the composite
        is drawn from its smallest pyramid level.
    stack_layout : StackLayout, optional
        Where the maps lie in the analysed stack (its spectral axis, origin, axis
        names: :class:`~napari_unmix.io.stack_layout.StackLayout`), kept in
        ``result.json`` as ``"stack_layout"``: napari's reader puts the maps on the
        stack's axes with it.  A z / t series saved whole needs none (its params give
        the spectral axis).
    labels : array_like of int, optional
        The label image the run was given, for a run seeded from label ids
        (``RoiLabel`` sources): kept as ``labels.tif`` (ids, dtype and shape exactly:
        :func:`~napari_unmix.io.setup_files.write_label_image`) and named, with its
        checksum, in ``config.json``'s ``label_image``, so that a rerun from the
        folder needs no ``--labels``.  It must be the image the result records
        (``summary.labels_sha256``) and the result must hold its config.

    Returns
    -------
    dict of str -> Path or list of Path
        What was written, by kind (``"maps"``, ``"spectra"``, ``"composite"``,
        ``"json"``, ``"bundle"`` and, with a config, ``"config"``; with labels,
        ``"labels"``), as paths in ``out_dir``.

    Raises
    ------
    ValueError
        When ``out_dir`` may not be replaced (:func:`check_output_folder`), or
        ``labels`` are not the result's (another checksum than the recorded one, or a
        result without its config).
    """
    from ..core.colors import (
        NEGATIVE_COLOR,
        POSITIVE_COLOR,
        composite,
        default_colors,
        signed_rgb,
    )
    from ..core.modes import MODES

    if maps_format not in MAPS_FORMATS:
        raise ValueError(f"maps_format={maps_format!r}: choose one of {MAPS_FORMATS}.")
    check_output_folder(out_dir)
    out = Path(out_dir)
    spatial_shape = tuple(int(s) for s in spatial_shape)
    layout = None if stack_layout is None else stack_layout.checked(spatial_shape)
    names = list(result.component_names)
    k = result.n_components
    config = result.config
    if labels is not None:
        _check_labels(result, labels)
    files: dict = {}
    with atomic_folder(out) as tmp:
        if maps_format == "ome-zarr":
            from .ome_zarr_out import write_result_maps_ome_zarr

            result, maps = write_result_maps_ome_zarr(tmp, result, spatial_shape,
                                                      colors=colors, pixel_size=pixel_size)
            files["maps"] = tmp
        else:
            maps = result.maps(spatial_shape)
            files["maps"] = write_maps_tiff(tmp / OUTPUT_NAMES["maps"], _tiff_maps(maps, k),
                                            names, pixel_size=_tiff_sizes(pixel_size, maps))
        files["spectra"] = write_spectra_csv(tmp / OUTPUT_NAMES["spectra"], result.H,
                                             result.spectral_values, names,
                                             result.spectral_unit)
        plane_H = (result.arrays or {}).get("plane_H")
        if plane_H is not None and np.ndim(plane_H) == 3 and np.shape(plane_H)[1:] == \
                np.shape(result.H):
            # a per-plane series: spectra.csv is the mean of its planes' spectra, and
            # every plane was fitted with its own
            width = max(3, len(str(np.shape(plane_H)[0] - 1)))
            files["plane_spectra"] = [
                write_spectra_csv(tmp / f"spectra_z{z:0{width}d}.csv", plane_H[z],
                                  result.spectral_values, names, result.spectral_unit)
                for z in range(np.shape(plane_H)[0])]
        pngs = []
        cols = default_colors(k) if colors is None else list(colors)
        legend = [LegendEntry(n, c) for n, c in zip(names, cols, strict=True) if c]
        size, unit = _figure_scale(pixel_size, spatial_shape, maps)
        aspect = _figure_aspect(pixel_size, spatial_shape, maps)
        spec = MODES.get(result.mode)
        signed = spec is not None and not spec.non_negative
        if signed and maps.ndim >= 3:
            # signed scores are no amounts, so they are not added into a composite:
            # the first component alone, positive and negative apart, one stretch
            rgb = signed_rgb(maps[0].reshape(-1, *maps.shape[-2:]))
            legend = [LegendEntry(f"{names[0]} > 0", POSITIVE_COLOR),
                      LegendEntry(f"{names[0]} < 0", NEGATIVE_COLOR)]
            title = f"{names[0]} scores (signed; every component is in maps.tif)"
            if maps.ndim == 3:
                pngs.append(write_composite_figure(tmp / OUTPUT_NAMES["composite"], rgb[0],
                                                   legend, pixel_size=size, unit=unit,
                                                   pixel_aspect=aspect, title=title))
            else:
                width = max(3, len(str(rgb.shape[0] - 1)))
                for z in range(rgb.shape[0]):
                    pngs.append(write_composite_figure(
                        tmp / f"composite_z{z:0{width}d}.png", rgb[z], legend,
                        pixel_size=size, unit=unit, pixel_aspect=aspect,
                        title=f"plane {z}: {title}"))
        elif maps.ndim == 3:
            pngs.append(write_composite_figure(tmp / OUTPUT_NAMES["composite"],
                                               composite(maps, cols), legend,
                                               pixel_size=size, unit=unit,
                                               pixel_aspect=aspect))
        elif maps.ndim >= 4:
            planes = maps.reshape(k, -1, *maps.shape[-2:])
            rgb = composite(planes, cols)  # one contrast stretch for all planes: comparable
            width = max(3, len(str(planes.shape[1] - 1)))
            outer = maps.shape[1:-2]
            for z in range(planes.shape[1]):
                # two outer axes are maps.tif's frames and slices (TZCYX)
                title = (f"plane {z}: frame {z // outer[1]}, slice {z % outer[1]}"
                         if len(outer) == 2 else f"plane {z}")
                pngs.append(write_composite_figure(
                    tmp / f"composite_z{z:0{width}d}.png", rgb[z], legend, pixel_size=size,
                    unit=unit, pixel_aspect=aspect, title=title))
        files["composite"] = pngs
        files["bundle"] = result.save(tmp / OUTPUT_NAMES["bundle"])
        if config is not None:
            ref = None
            if labels is not None:
                files["labels"] = tmp / LABELS_NAME
                ref = write_label_image(files["labels"], labels)
            files["config"] = config.replace(label_image=ref).save(tmp / CONFIG_NAME)
        info = {"spatial_shape": list(spatial_shape), "maps_format": maps_format,
                "files": {key: ([p.name for p in v] if isinstance(v, list) else
                                "." if v == tmp else v.name) for key, v in files.items()}}
        sizes = _spatial_sizes(pixel_size, spatial_shape)
        if sizes is not None:  # read back by read_result_bundle: the maps keep their scale
            info["pixel_size"] = {"scale": list(sizes[0]), "units": list(sizes[1])}
        if layout is not None:  # read back by read_result_bundle: the maps on the stack's axes
            info["stack_layout"] = layout.to_json()
        info["files"]["json"] = OUTPUT_NAMES["json"]
        if extra:
            info.update(extra)
        files["json"] = write_result_json(tmp / OUTPUT_NAMES["json"], result, extra=info)
    return {key: ([out / p.name for p in v] if isinstance(v, list) else
                  out if v == tmp else out / v.name) for key, v in files.items()}


def _check_labels(result, labels) -> None:
    """Refuse a label image that is not the one ``result`` was made with."""
    from ..core.analysis import labels_sha256

    if result.config is None:
        raise ValueError("labels are kept beside the config of the result (config.json), "
                         "but this result holds no analysis config; leave labels out.")
    recorded = getattr(result.summary, "labels_sha256", None)
    if recorded is not None and labels_sha256(labels) != recorded:
        raise ValueError("these labels are not the label image the result was made with "
                         "(their checksum is not its summary's labels_sha256); give the "
                         "labels of its run.")


def _tiff_maps(maps, k):
    """Maps as ImageJ takes them: a line (k, N) as one row, > 4 spatial axes folded."""
    if maps.ndim == 2:
        return maps[:, None, :]
    if maps.ndim > 5:
        return maps.reshape(k, -1, *maps.shape[-2:])
    return maps


def _figure_scale(pixel_size, spatial_shape, maps):
    """The X pixel size and unit of the composite figure's scale bar (of the maps as
    drawn: the smallest pyramid level of OME-Zarr maps is coarser), or (None, None)."""
    if pixel_size is None or pixel_size[0] is None or len(spatial_shape) < 2:
        return None, None
    scale, units = tuple(pixel_size[0]), tuple(pixel_size[1])
    if not scale or not units or not units[-1] or not float(scale[-1]) > 0:
        return None, None
    return float(scale[-1]) * spatial_shape[-1] / maps.shape[-1], str(units[-1])


def _figure_aspect(pixel_size, spatial_shape, maps) -> float:
    """A pixel's height over its width in the composite figure (the Y pixel size over
    the X one, of the maps as drawn); 1.0 without two positive sizes."""
    if pixel_size is None or pixel_size[0] is None or len(spatial_shape) < 2:
        return 1.0
    scale = tuple(pixel_size[0])
    if len(scale) < 2 or not (float(scale[-2]) > 0 and float(scale[-1]) > 0):
        return 1.0
    sy = float(scale[-2]) * spatial_shape[-2] / maps.shape[-2]
    sx = float(scale[-1]) * spatial_shape[-1] / maps.shape[-1]
    return sy / sx


def _spatial_sizes(pixel_size, spatial_shape):
    """``(scale, units)`` with one float and one unit per spatial axis, or None."""
    if pixel_size is None or pixel_size[0] is None:
        return None
    scale, units = tuple(pixel_size[0]), tuple(pixel_size[1])
    if len(scale) != len(spatial_shape) or len(units) != len(scale):
        return None
    return tuple(float(v) for v in scale), tuple(str(u or "") for u in units)


def _tiff_sizes(pixel_size, maps):
    """The pixel sizes of the maps as written to the TIFF (none for folded or line maps)."""
    if pixel_size is None or maps.ndim not in (3, 4):
        return None
    return pixel_size
