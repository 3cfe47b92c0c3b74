"""Which axis is which: axis labels from the data, and the viewer showing the Y-X plane.

napari shows the last two axes of the viewer's dims order and labels its sliders
``-3``, ``-4`` ... unless the layers say otherwise.  A channel-last stack such as
``(Y, X, C)`` (the emulsion Raman cube, many ``.npy`` / ``.npz`` files) is then shown
as an X-by-wavenumber plane, and its maps as stripes.

:func:`axis_labels`
    One label per data axis: the spectral axis ``λ`` (wavelengths), ``ν̃``
    (wavenumbers) or ``C`` (channel numbers, no spectral values); the last two
    spatial axes ``Y`` and ``X``; the others ``Z``, then ``T``, then ``S`` ... from
    the Y-X plane outwards, unless the file named them (tifffile's ``T``, ``Z``;
    its placeholders ``Q``, ``I`` ... are replaced).
:func:`plane_order`
    The viewer's dims order that shows an image's Y-X plane, keeping the order of the
    other axes; the dock applies it when an image is chosen
    (:meth:`~.session.UnmixSession.show_spatial_plane`).

Nothing here imports Qt or napari.
"""

from __future__ import annotations

__all__ = ["SPECTRAL_LABELS", "axis_labels", "is_default_label", "plane_order",
           "spectral_label"]

#: Slider label of the spectral axis, by unit (``None``: channel numbers).
SPECTRAL_LABELS = {"nm": "λ", "cm^-1": "ν̃", None: "C"}
_SPATIAL_OUTWARDS = ("Z", "T", "S", "P", "R")
_KNOWN = set("TZ")


def spectral_label(unit: str | None) -> str:
    """The label of a spectral axis in ``unit`` (``"λ"``, ``"ν̃"``; ``"λ"`` for another
    unit; ``"C"`` without spectral values)."""
    if unit is None:
        return SPECTRAL_LABELS[None]
    return SPECTRAL_LABELS.get(str(unit), "λ")


def axis_labels(ndim: int, spectral_axis: int, *, axes: str | None = None,
                unit: str | None = None) -> tuple[str, ...]:
    """One label per axis of a stack (see the module documentation).

    Parameters
    ----------
    ndim : int
    spectral_axis : int
    axes : str, optional
        tifffile's axis letters of the file, when it has them.
    unit : str, optional
        The spectral unit (``None``: no spectral values, channel numbers).
    """
    s = int(spectral_axis) % ndim
    labels = [""] * ndim
    labels[s] = spectral_label(unit)
    spatial = [i for i in range(ndim) if i != s]
    for i, letter in zip(spatial[-2:], ("Y", "X"), strict=False):
        labels[i] = letter
    taken = {"Y", "X"}
    outer = spatial[:-2]
    for i in outer:  # letters the file gives
        letter = axes[i] if axes and len(axes) == ndim else None
        if letter in _KNOWN and letter not in taken:
            labels[i] = letter
            taken.add(letter)
    free = iter(x for x in _SPATIAL_OUTWARDS if x not in taken)
    for i in reversed(outer):
        if not labels[i]:
            labels[i] = next(free, f"axis {i}")
    return tuple(labels)


def is_default_label(label) -> bool:
    """Whether a layer's axis label is napari's placeholder (``"-3"`` ...)."""
    text = str(label).strip()
    return text.startswith("-") and text[1:].isdigit()


def plane_order(order, n_viewer_dims: int, layer_ndim: int, yx_dims) -> tuple[int, ...]:
    """The viewer's dims order showing a layer's Y-X plane.

    Parameters
    ----------
    order : sequence of int
        The viewer's dims order now.
    n_viewer_dims : int
    layer_ndim : int
        The layer's number of axes (its last axes line up with the viewer's last).
    yx_dims : (int, int)
        The layer's data axes of its Y-X plane.

    Returns
    -------
    tuple of int
        ``order`` with the Y and X world axes moved to the end (unchanged when they
        are there already).
    """
    off = int(n_viewer_dims) - int(layer_ndim)
    y, x = (off + int(d) for d in yx_dims)
    rest = [int(d) for d in order if int(d) not in (y, x)]
    return (*rest, y, x)
