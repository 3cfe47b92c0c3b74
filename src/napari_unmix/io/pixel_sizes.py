"""Physical pixel sizes from a stack's metadata: OME-XML, ImageJ, Zeiss LSM, Leica ``.txt``.

The sizes found are one ``(value, unit)`` per spatial axis letter (``X``, ``Y``,
``Z``); :func:`axis_scale` turns them into a scale and a unit per axis of the stack,
which napari uses for the layer (its scale bar then reads micrometres instead of
pixels) and which every output of the stack's maps keeps.

* OME-XML: ``PhysicalSizeX`` / ``Y`` / ``Z`` of the image's ``Pixels`` and their
  ``...Unit`` (default µm, as the OME schema says);
* ImageJ: the ``XResolution`` / ``YResolution`` tags (pixels per unit), the
  ``unit`` of the ImageJ metadata and its ``spacing`` (Z);
* Zeiss LSM: ``VoxelSizeX`` / ``Y`` / ``Z`` of the ``CZ_LSMINFO`` tag (metres, read
  as µm);
* a Leica ``.txt`` metadata file in a slice folder (TCS SP2 exports such as
  ``03.txt``): per dimension its ``Logical Size`` and ``Physical Length`` (the
  pixel size is the length over the number of pixels; dimension 120 is X, 121 Y,
  122 Z; the lines may end in NUL characters, as Leica writes them).

Units are normalised to ``"um"``, ``"nm"``, ``"mm"``, ``"cm"`` or ``"m"`` (what
napari's unit parser reads; texts show µm).  Other metric lengths are converted
exactly, value and unit (:func:`length`): Å (OME's symbol; OME-Zarr's
``"angstrom"``), pm, fm and am to nm, dm to cm, dam, hm and km to m.  Symbols are
read case-sensitively where case matters (``Mm`` is a megametre, ``Pm`` a petametre,
not mm or pm).  No size is better than a wrong one: anything that does not parse, is
not positive, or is in pixels is left out, and a length in a unit napari-unmix does
not use (OME's Mm and larger, inches, feet, astronomical or typographic units) is left
out with a note naming the unit (:func:`unit_note`).

This module imports none of its siblings.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path

__all__ = ["axis_scale", "leica_pixel_sizes", "length", "length_unit", "lsm_pixel_sizes",
           "square_pixels", "tiff_pixel_sizes", "unit_note", "unit_text"]

#: Every length read: its normalised unit and the exact factor into it, as
#: ``(unit, numerator, denominator)`` (a size in it is ``size * numerator / denominator``).
_LENGTHS = {"um": ("um", 1, 1), "nm": ("nm", 1, 1), "mm": ("mm", 1, 1),
            "cm": ("cm", 1, 1), "m": ("m", 1, 1), "å": ("nm", 1, 10),
            "pm": ("nm", 1, 1000), "fm": ("nm", 1, 10**6), "am": ("nm", 1, 10**9),
            "dm": ("cm", 10, 1), "dam": ("m", 10, 1), "hm": ("m", 100, 1),
            "km": ("m", 1000, 1)}
#: Other spellings of them (lower case): OME-Zarr's UDUNITS-2 names, ImageJ's micron ...
_NAMES = {"µm": "um", "μm": "um", "\\u00b5m": "um", "micron": "um", "microns": "um",
          "micrometer": "um", "micrometre": "um", "nanometer": "nm", "nanometre": "nm",
          "millimeter": "mm", "millimetre": "mm", "centimeter": "cm", "centimetre": "cm",
          "meter": "m", "metre": "m", "angstrom": "å", "ångström": "å", "angstroem": "å",
          "picometer": "pm", "picometre": "pm", "femtometer": "fm",
          "femtometre": "fm", "attometer": "am", "attometre": "am", "decimeter": "dm",
          "decimetre": "dm", "decameter": "dam", "decametre": "dam", "dekameter": "dam",
          "hectometer": "hm", "hectometre": "hm", "kilometer": "km", "kilometre": "km"}
#: OME symbols that lower case would misread (megametre as mm, petametre as pm ...).
_CASED = {"Mm", "Gm", "Tm", "Pm", "Em", "Zm", "Ym", "zm", "ym"}
#: What says "no physical size" rather than naming a length.
_NO_LENGTH = {"", "pixel", "pixels", "px"}
_LEICA_DIMS = {120: "X", 121: "Y", 122: "Z", 116: "T"}


def _canonical(unit) -> str | None:
    text = str(unit).strip()
    if text in _CASED:
        return None
    low = text.lower().replace("\\\\", "\\")
    low = _NAMES.get(low, low)
    return low if low in _LENGTHS else None


def length_unit(unit) -> str | None:
    """A length unit in the normalised form (``"um"`` ...), or None (unknown, pixels, or
    a length that needs converting: :func:`length`)."""
    if unit is None:
        return None
    found = _LENGTHS.get(_canonical(unit))
    return found[0] if found is not None and found[1:] == (1, 1) else None


def length(size, unit) -> tuple[float, str] | None:
    """``(size, unit)`` of a length in the normalised units, converted exactly
    (``(5, "Å")`` -> ``(0.5, "nm")``); None when ``size`` is not a positive number or
    ``unit`` not a length read here (see :func:`unit_note`).

    Parameters
    ----------
    size : float or str
    unit : str or None

    Returns
    -------
    tuple of (float, str) or None
    """
    value = _positive(size)
    found = None if unit is None else _LENGTHS.get(_canonical(unit))
    if value is None or found is None:
        return None
    target, num, den = found
    return (value * num / den if (num, den) != (1, 1) else value), target


def unit_note(unit, where: str) -> str | None:
    """The note for a pixel size given in ``unit`` that :func:`length` cannot use
    (``where``: what gave it), or None when the unit is usable or names no length.

    Parameters
    ----------
    unit : str or None
    where : str
        E.g. ``"img.ome.tif: PhysicalSizeX"``.

    Returns
    -------
    str or None
    """
    if unit is None or str(unit).strip().lower() in _NO_LENGTH or \
            _canonical(unit) is not None:
        return None
    return (f"{where}: the pixel size is given in {str(unit).strip()!r}, a unit "
            "napari-unmix does not use (it reads nm, µm, mm, cm and m, and converts Å, pm "
            "and the other metric lengths from am to km); the pixel size is not used and "
            "the layer is in pixels.")


def unit_text(unit: str | None) -> str:
    """How a normalised unit is written for people (``"um"`` -> ``"µm"``)."""
    return {"um": "µm"}.get(unit, unit or "pixel")


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def lsm_pixel_sizes(meta) -> dict:
    """``{letter: (size, "um")}`` from Zeiss LSM metadata (tifffile's ``lsm_metadata``:
    ``VoxelSizeX`` / ``Y`` / ``Z``, in metres, converted in decimal: 2e-07 m is 0.2 µm,
    not 0.19999999999999998); a size that is not positive is left out."""
    out = {}
    for letter in "XYZ":
        size = _positive((meta or {}).get(f"VoxelSize{letter}"))
        if size is not None:
            out[letter] = (float(Decimal(repr(size)).scaleb(6)), "um")
    return out


def tiff_pixel_sizes(tf, series_index: int = 0, *, notes: list | None = None) -> dict:
    """``{letter: (size, unit)}`` from an open ``tifffile.TiffFile`` (OME, then
    ImageJ, then Zeiss LSM); empty when the file says nothing usable.  A size in a
    unit that cannot be used adds a note to ``notes`` (:func:`unit_note`)."""
    import tifffile

    out: dict = {}
    name = Path(getattr(tf, "filename", "") or "the file").name

    def _note(unit, where):
        text = unit_note(unit, f"{name}: {where}")
        if text is not None and notes is not None and text not in notes:
            notes.append(text)

    if tf.is_ome:
        try:
            images = tifffile.xml2dict(tf.ome_metadata)["OME"].get("Image")
            images = images if isinstance(images, list) else [images]
            pixels = (images[series_index] or {}).get("Pixels") or {}
        except Exception:  # noqa: BLE001 - broken OME-XML: no sizes from it
            pixels = {}
        unused: dict = {}  # unit -> the letters given in it
        for letter in "XYZ":
            size, unit = (pixels.get(f"PhysicalSize{letter}"),
                          pixels.get(f"PhysicalSize{letter}Unit", "µm"))
            found = length(size, unit)
            if found is not None:
                out[letter] = found
            elif _positive(size) is not None:
                unused.setdefault(str(unit), []).append(letter)
        for unit, letters in unused.items():
            _note(unit, "OME " + ", ".join(f"PhysicalSize{x}" for x in letters))
    if not out and not tf.is_imagej and tf.is_lsm:
        return lsm_pixel_sizes(tf.lsm_metadata)
    if out or not tf.is_imagej:
        return out
    meta = tf.imagej_metadata or {}
    if length(1.0, meta.get("unit")) is None:
        _note(meta.get("unit"), "ImageJ unit")
        return out
    unit = meta.get("unit")
    page = tf.pages[0]
    for letter, tag in (("X", "XResolution"), ("Y", "YResolution")):
        try:
            num, den = page.tags[tag].value
        except (KeyError, TypeError, ValueError):
            continue
        per_unit = _positive(num / den if den else None)
        if per_unit is not None and per_unit != 1.0:  # 1 px per unit: not set
            out[letter] = length(1.0 / per_unit, unit)
    spacing = length(meta.get("spacing"), unit)
    if spacing is not None and out:
        out["Z"] = spacing
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
