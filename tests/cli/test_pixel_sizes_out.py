"""Physical pixel sizes of the input carried into every output of `napari-unmix run`.

OME-TIFF and ImageJ stacks with pixel sizes: the maps TIFF, the result.json and the
result folder as read back (and so the map layers napari makes of it) keep them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_unmix.cli import main
from napari_unmix.io import open_stack, read_result_bundle


def _cube():
    return np.random.default_rng(0).integers(1, 255, (6, 16, 20)).astype(np.uint8)


def _write(path, kind):
    if kind == "ome":
        tifffile.imwrite(path, _cube(), ome=True,
                         metadata={"axes": "CYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.25,
                                   "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    else:
        tifffile.imwrite(path, _cube(), imagej=True, resolution=(5.0, 4.0),
                         metadata={"axes": "CYX", "unit": "um"})


@pytest.mark.parametrize("kind", ["ome", "imagej"])
def test_the_maps_the_json_and_the_bundle_keep_the_pixel_sizes(tmp_path, kind):
    path = tmp_path / f"{kind}.tif"
    _write(path, kind)
    out = tmp_path / "out"
    assert main(["run", str(path), "--mode", "nmf", "-k", "2", "--max-iter", "5",
                 "--out", str(out), "--no-progress", "--quiet"]) == 0
    want = (0.25, 0.2)  # Y, X
    maps = open_stack(out / "maps.tif")
    np.testing.assert_allclose(maps.scale[-2:], want, rtol=1e-6)
    assert [u in ("um", "µm", "micrometer") for u in maps.units[-2:]] == [True, True]
    doc = json.loads((out / "result.json").read_text())
    np.testing.assert_allclose(doc["pixel_size"]["scale"], want, rtol=1e-6)
    bundle = read_result_bundle(out)
    np.testing.assert_allclose(bundle.pixel_size[0], want, rtol=1e-6)
    assert len(bundle.pixel_size[1]) == 2 and all(bundle.pixel_size[1])


def test_without_pixel_sizes_the_bundle_has_none(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, _cube(), metadata={"axes": "CYX"})
    out = tmp_path / "out"
    assert main(["run", str(path), "--mode", "pca", "-k", "2", "--spectral-axis", "0",
                 "--out", str(out), "--no-progress", "--quiet"]) == 0
    assert "pixel_size" not in json.loads((out / "result.json").read_text())
    assert read_result_bundle(out).pixel_size is None


def test_suggest_keeps_the_pixel_sizes_as_run_does(tmp_path):
    path = tmp_path / "ome.tif"
    _write(path, "ome")
    out = tmp_path / "out"
    assert main(["suggest", str(path), "-k", "2", "--max-iter", "5", "--out", str(out),
                 "--no-progress", "--quiet"]) == 0
    want = (0.25, 0.2)  # Y, X
    np.testing.assert_allclose(open_stack(out / "maps.tif").scale[-2:], want, rtol=1e-6)
    doc = json.loads((out / "result.json").read_text())
    np.testing.assert_allclose(doc["pixel_size"]["scale"], want, rtol=1e-6)
    np.testing.assert_allclose(read_result_bundle(out).pixel_size[0], want, rtol=1e-6)
