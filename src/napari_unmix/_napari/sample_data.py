"""npe2 sample-data hooks: the synthetic CRS stacks of :mod:`napari_unmix.core.synthetic`.

Each hook returns a list of layer data tuples ``(data, kwargs, "image")``.  The
image layer's ``metadata`` carries what the unmixing dock needs to know about the
stack, and the ground truth for checking a result:

``spectral_axis_index``
    Position of the spectral axis in the layer data (0 for ``(C, Y, X)``, 1 for
    ``(Z, C, Y, X)``).
``spectral_values``, ``spectral_unit``
    Wavenumber of every channel, and ``"cm^-1"``.
``ground_truth``
    ``{"W", "H", "component_names", "colors", "noise", "noise_floor",
    "random_state"}`` (see :class:`~napari_unmix.core.synthetic.SyntheticSample`).

These hooks import no Qt; napari imports them when a sample is opened.
"""

from __future__ import annotations

from ..core.synthetic import SyntheticSample, make_crs_sample, make_crs_sample_4d
from .axes import axis_labels

__all__ = ["crs_sample", "crs_sample_4d", "sample_layer_data"]


def sample_layer_data(sample: SyntheticSample, name: str) -> list:
    """The layer data tuple of a :class:`SyntheticSample` (its stack as an image)."""
    meta = {
        "spectral_axis_index": sample.spectral_axis_index,
        "spectral_values": sample.spectral_axis,
        "spectral_unit": sample.spectral_unit,
        "ground_truth": {
            "W": sample.W,
            "H": sample.H,
            "component_names": list(sample.component_names),
            "colors": list(sample.colors),
            "noise": sample.noise,
            "noise_floor": sample.noise_floor,
            "random_state": sample.random_state,
        },
    }
    labels = axis_labels(sample.stack.ndim, sample.spectral_axis_index,
                         unit=sample.spectral_unit)
    return [(sample.stack, {"name": name, "metadata": meta, "colormap": "gray",
                            "axis_labels": labels}, "image")]


def crs_sample() -> list:
    """Synthetic CRS stack ``(C, Y, X)``: 128 x 128 pixels, 64 channels, 2800-3100 cm^-1."""
    return sample_layer_data(make_crs_sample(), "synthetic CRS (C, Y, X)")


def crs_sample_4d() -> list:
    """Synthetic CRS z-series ``(Z, C, Y, X)``: 8 planes of 96 x 96 pixels, 48 channels."""
    return sample_layer_data(make_crs_sample_4d(), "synthetic CRS z-series (Z, C, Y, X)")
