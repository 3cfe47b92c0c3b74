"""Physical pixel sizes from a stack's metadata: OME-XML, ImageJ, Leica ``.txt`` files.

The sizes found are one ``(value, unit)`` per spatial axis letter (``X``, ``Y``,
``Z``); :func:`axis_scale` turns them into a scale and a unit per axis of the stack,
which napari uses for the layer (its scale bar then reads micrometres instead of
pixels) and which every output of the stack's maps keeps.

* OME-XML: ``PhysicalSizeX`` / ``Y`` / ``Z`` of the image's ``Pixels`` and their
  ``...Unit`` (default µm, as the OME schema says);
* ImageJ: the ``XResolution`` / ``YResolution`` tags (pixels per unit), the
  ``unit`` of the ImageJ metadata and its ``spacing`` (Z);
* a Leica ``.txt`` metadata file in a slice folder (TCS SP2 exports such as
  ``03.txt``): per dimension its ``Logical Size`` and ``Physical Length`` (the
  pixel size is the length over the number of pixels; dimension 120 is X, 121 Y,
  122 Z; the lines may end in NUL characters, as Leica writes them).

Units are normalised to ``"um"``, ``"nm"``, ``"mm"``, ``"cm"`` or ``"m"`` (what
napari's unit parser reads; texts show µm).  No size is better than a wrong one:
anything that does not parse, is not positive, or is in pixels is left out.

This module imports none of its siblings.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

__all__ = ["axis_scale", "leica_pixel_sizes", "length_unit", "square_pixels",
           "tiff_pixel_sizes", "unit_text"]

_UNITS = {"um": "um", "µm": "um", "μm": "um", "micron": "um", "microns": "um",
          "micrometer": "um", "micrometre": "um", "\\u00b5m": "um", "nm": "nm",
          "nanometer": "nm", "nanometre": "nm", "mm": "mm", "millimeter": "mm",
          "millimetre": "mm", "cm": "cm", "centimeter": "cm", "centimetre": "cm", "m": "m",
          "meter": "m", "metre": "m"}
_LEICA_DIMS = {120: "X", 121: "Y", 122: "Z", 116: "T"}


def length_unit(unit) -> str | None:
    """A length unit in the normalised form (``"um"`` ...), or None (unknown, pixels)."""
    if unit is None:
        return None
    return _UNITS.get(str(unit).strip().lower().replace("\\\\", "\\"))


def unit_text(unit: str | None) -> str:
    """How a normalised unit is written for people (``"um"`` -> ``"µm"``)."""
    return {"um": "µm"}.get(unit, unit or "pixel")


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def tiff_pixel_sizes(tf, series_index: int = 0) -> dict:
    """``{letter: (size, unit)}`` from an open ``tifffile.TiffFile`` (OME, then
    ImageJ); empty when the file says nothing usable."""
    import tifffile

    out: dict = {}
    if tf.is_ome:
        try:
            images = tifffile.xml2dict(tf.ome_metadata)["OME"].get("Image")
            images = images if isinstance(images, list) else [images]
            pixels = (images[series_index] or {}).get("Pixels") or {}
        except Exception:  # noqa: BLE001 - broken OME-XML: no sizes from it
            pixels = {}
        for letter in "XYZ":
            size = _positive(pixels.get(f"PhysicalSize{letter}"))
            unit = length_unit(pixels.get(f"PhysicalSize{letter}Unit", "µm"))
            if size is not None and unit is not None:
                out[letter] = (size, unit)
    if out or not tf.is_imagej:
        return out
    meta = tf.imagej_metadata or {}
    unit = length_unit(meta.get("unit"))
    if unit is None:
        return out
    page = tf.pages[0]
    for letter, tag in (("X", "XResolution"), ("Y", "YResolution")):
        try:
            num, den = page.tags[tag].value
        except (KeyError, TypeError, ValueError):
            continue
        per_unit = _positive(num / den if den else None)
        if per_unit is not None and per_unit != 1.0:  # 1 px per unit: not set
            out[letter] = (1.0 / per_unit, unit)
    spacing = _positive(meta.get("spacing"))
    if spacing is not None and out:
        out["Z"] = (spacing, unit)
    return out


def square_pixels(axes, sizes: dict) -> tuple[dict, str | None]:
    """``sizes`` with the pixel size of Y taken from X (or X from Y) when the file gives
    only one of them, and the note that says so; ``(sizes, None)`` otherwise.

    A size for X alone would stretch the image by the ratio of that size to 1 in
    napari (a 0.1 um X against a Y of "1"); microscope pixels are square unless the
    file says otherwise.
    """
    if not axes or "X" not in axes or "Y" not in axes:
        return sizes, None
    have = [letter for letter in "XY" if letter in sizes]
    if len(have) != 1:
        return sizes, None
    given, other = have[0], "Y" if have[0] == "X" else "X"
    size, unit = sizes[given]
    note = (f"the file gives the pixel size of {given} only ({size:g} {unit}); {other} is "
            "taken as the same (square pixels).")
    return {**sizes, other: (size, unit)}, note


def leica_pixel_sizes(folder) -> dict:
    """``{letter: (size, unit)}`` from a Leica ``.txt`` metadata file in ``folder``
    (the first that reads as one); empty without one."""
    for path in sorted(Path(folder).glob("*.txt")):
        try:
            text = path.read_text(encoding="latin-1", errors="replace")[:200_000]
        except OSError:
            continue
        if "Leica" not in text[:400] or "Physical Length" not in text:
            continue
        out = {}
        blocks = re.finditer(
            r"Dimension_\d+:\s*(\d+)[\s\x00]+Logical Size:\s*(\d+)[\s\x00]+"
            r"Physical Length:\s*([-+0-9.eE]+)[ \t]*([a-zA-Zµ]*)", text)
        for m in blocks:
            letter = _LEICA_DIMS.get(int(m.group(1)))
            n, length = int(m.group(2)), _positive(m.group(3))
            unit = m.group(4) or "m"
            if letter in ("X", "Y", "Z") and length is not None and n > 0 \
                    and length_unit(unit) == "m" and letter not in out:
                out[letter] = (length / n * 1e6, "um")
        if out:
            return out
    return {}


def axis_scale(axes, ndim: int, sizes: dict, *, spectral_axis: int | None = None):
    """``(scale, units)``: one per axis of a stack with axis letters ``axes``, from
    ``sizes`` (``{letter: (size, unit)}``); ``(None, None)`` when no axis has a size
    or the axes are unknown.  Axes without a size get 1.0 and ``""``, and so does
    ``spectral_axis``: a stack whose slices the file calls Z but whose spectral axis
    that is (an ImageJ stack with a slice spacing) has channels, not a length, along it."""
    if not sizes or not axes or len(axes) != ndim:
        return None, None
    scale = [1.0] * ndim
    units = [""] * ndim
    found = False
    for i, letter in enumerate(axes):
        if letter in sizes and i != spectral_axis:
            scale[i], units[i] = float(sizes[letter][0]), sizes[letter][1]
            found = True
    return (tuple(scale), tuple(units)) if found else (None, None)
