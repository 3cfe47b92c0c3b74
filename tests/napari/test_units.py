"""Issue 13, problem 9: physical pixel sizes and units reach the layers and the outputs.

No pixel size used to be read (the scale bar said "100 pixel"), and a Leica
folder's channel numbers 0-11 were shown as spectral values "from the file".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

napari = pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.layers import result_layers  # noqa: E402

LEICA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "neher_leica_3dye"
LEICA_TXT = """Leica Microsystems Heidelberg GmbH
DIMENSION DESCRIPTION #0
Number of Dimensions:	4
Dimension_0:    	120
Logical Size:    	32
Physical Length: 	1.600000e-005 m
Physical Origin: 	0.000000e+000 m
Dimension_1:    	121
Logical Size:    	32
Physical Length: 	1.600000e-005 m
Physical Origin: 	0.000000e+000 m
Dimension_2:    	6815843
Logical Size:    	6
Physical Length: 	0.000000e+000
Physical Origin: 	0.000000e+000
"""


def _cube():
    rng = np.random.default_rng(0)
    return rng.integers(1, 255, (6, 32, 32)).astype(np.uint8)


@pytest.fixture
def leica_like(tmp_path):
    folder = tmp_path / "leica"
    folder.mkdir()
    for c, plane in enumerate(_cube()):
        tifffile.imwrite(folder / f"03_Series004_z000_ch{c:02d}.tif", plane)
    (folder / "03.txt").write_text(LEICA_TXT, encoding="latin-1")
    return folder


def _um(unit) -> bool:
    return str(unit) == "micrometer"


def test_a_leica_folder_gets_its_pixel_size_and_no_made_up_spectral_values(
        qtbot, make_napari_viewer, leica_like, run_dock):
    viewer = make_napari_viewer(strict_qt=True)
    (layer,) = viewer.open(str(leica_like), plugin="napari-unmix")
    np.testing.assert_allclose(layer.scale, (1.0, 0.5, 0.5))  # 16 µm / 32 px
    assert _um(layer.units[1]) and _um(layer.units[2])
    assert _um(viewer.layers.units[-1])  # the scale bar reads µm, not pixels
    assert layer.metadata["spectral_values"] is None  # channel numbers are no values
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    assert "channel numbers" in dock.form.axis_info.value
    f = dock.form
    f.n_components.value = 2
    f.max_iter.value = 20
    run_dock(dock)
    for m in result_layers(viewer):
        np.testing.assert_allclose(m.scale[-2:], (0.5, 0.5))
        assert _um(m.units[-1]) and _um(m.units[-2])


@pytest.mark.parametrize("kind", ["ome", "imagej"])
def test_ome_and_imagej_pixel_sizes(make_napari_viewer, tmp_path, kind):
    path = tmp_path / f"{kind}.tif"
    if kind == "ome":
        tifffile.imwrite(path, _cube(), ome=True,
                         metadata={"axes": "CYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2,
                                   "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    else:
        tifffile.imwrite(path, _cube(), imagej=True, resolution=(5.0, 5.0),
                         metadata={"axes": "CYX", "unit": "um"})
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-unmix")
    np.testing.assert_allclose(layer.scale, (1.0, 0.2, 0.2))
    assert _um(layer.units[-1])


@pytest.mark.realdata
def test_the_real_leica_folder_has_238_um_over_512_pixels(make_napari_viewer):
    if not LEICA.is_dir():
        pytest.skip(f"real data not found at {LEICA} (see ../shared/data/README.md)")
    from napari_unmix._napari.reader import read_layers

    [(_, kwargs, _)] = read_layers(str(LEICA))
    np.testing.assert_allclose(kwargs["scale"][1:], 2.380952e-4 / 512 * 1e6, rtol=1e-6)
    assert kwargs["metadata"]["spectral_values"] is None


def test_a_result_folder_opens_with_the_pixel_sizes_of_its_stack(make_napari_viewer, tmp_path):
    from napari_unmix.cli import main

    path = tmp_path / "ome.tif"
    tifffile.imwrite(path, _cube(), ome=True,
                     metadata={"axes": "CYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2,
                               "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    out = tmp_path / "out"
    assert main(["run", str(path), "--mode", "nmf", "-k", "2", "--max-iter", "5",
                 "--out", str(out), "--no-progress", "--quiet"]) == 0
    viewer = make_napari_viewer()
    layers = viewer.open(str(out), plugin="napari-unmix")
    assert len(layers) == 2
    for layer in layers:
        np.testing.assert_allclose(layer.scale, (0.2, 0.2))
        assert _um(layer.units[-1]) and _um(layer.units[-2])
    # and on into what napari saves of them: the maps TIFF and a result folder
    from napari_unmix.io import open_stack, read_result_bundle

    [tif] = napari.save_layers(str(tmp_path / "saved.tif"), layers, plugin="napari-unmix")
    saved = open_stack(tif)
    np.testing.assert_allclose(saved.scale[-2:], (0.2, 0.2), rtol=1e-6)
    assert [u == "um" for u in saved.units[-2:]] == [True, True]
    napari.save_layers(str(tmp_path / "again"), layers, plugin="napari-unmix")
    np.testing.assert_allclose(read_result_bundle(tmp_path / "again").pixel_size[0], (0.2, 0.2))
