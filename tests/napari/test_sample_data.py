"""The npe2 sample-data hooks and the manifest that declares them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_unmix.core import stack_to_matrix

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "src" / "napari_unmix" / "napari.yaml"


def test_manifest_is_valid_and_its_commands_import():
    from npe2 import PluginManifest

    pm = PluginManifest.from_file(MANIFEST)
    assert pm.name == "napari-unmix"
    keys = {s.key for s in pm.contributions.sample_data}
    assert {"crs", "crs-4d"} <= keys
    pm.validate_imports()  # every python_name resolves


def test_root_manifest_link_points_at_the_package_manifest():
    link = ROOT / "napari.yaml"
    assert link.is_symlink() and link.resolve() == MANIFEST.resolve()


@pytest.mark.parametrize("func, ndim, axis", [("crs_sample", 3, 0), ("crs_sample_4d", 4, 1)])
def test_sample_layer_tuples(func, ndim, axis):
    from napari_unmix._napari import sample_data

    layers = getattr(sample_data, func)()
    assert len(layers) == 1
    data, kwargs, kind = layers[0]
    assert kind == "image" and data.ndim == ndim and data.dtype == np.float32
    meta = kwargs["metadata"]
    assert meta["spectral_axis_index"] == axis
    assert meta["spectral_unit"] == "cm^-1"
    assert meta["spectral_values"].shape == (data.shape[axis],)
    gt = meta["ground_truth"]
    assert gt["component_names"] == ["lipid", "protein", "water", "background"]
    # the stored truth explains the layer data up to the stated noise floor
    X, _ = stack_to_matrix(data, axis)
    rel = np.linalg.norm(X - gt["W"] @ gt["H"]) / np.linalg.norm(X)
    assert rel == pytest.approx(gt["noise_floor"], rel=1e-5)


@pytest.mark.gui
def test_sample_opens_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-unmix", "crs")
    assert len(viewer.layers) == 1
    layer = viewer.layers[0]
    assert layer.data.shape == (64, 128, 128)
    assert layer.metadata["spectral_unit"] == "cm^-1"
