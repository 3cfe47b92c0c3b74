"""Issue 13, problem 4: what the reader hook claims, and what it leaves to napari.

The rule (``napari_unmix._napari.reader_rule``, the user guide's "Which reader"):
spectral stacks and results are read by napari-unmix; 2-D and RGB images, and TIFF
files without spectral evidence, by napari's own reader (which shows them better);
folders of slices that hold a metadata file (Leica's ``03.txt``) by napari-unmix
(napari's builtins fail on them).
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

napari = pytest.importorskip("napari")

from napari_unmix._napari.reader import get_reader, read_layers  # noqa: E402
from napari_unmix.io import write_stack_tiff  # noqa: E402

LEICA_TXT = """Leica Microsystems Heidelberg GmbH
DIMENSION DESCRIPTION #0
Number of Dimensions:	4
Dimension_0:    	120
Logical Size:    	16
Physical Length: 	8.000000e-006 m
Physical Origin: 	0.000000e+000 m
Dimension_1:    	121
Logical Size:    	16
Physical Length: 	8.000000e-006 m
Physical Origin: 	0.000000e+000 m
Dimension_2:    	6815843
Logical Size:    	4
Physical Length: 	0.000000e+000
Physical Origin: 	0.000000e+000
Series Name:	Series004
"""


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.integers(0, 255, (4, 16, 16), dtype=np.uint8)
    out = {}
    tifffile.imwrite(tmp_path / "plane.tif", cube[0])
    out["plane"] = tmp_path / "plane.tif"
    tifffile.imwrite(tmp_path / "rgb.tif", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
                     photometric="rgb")
    out["rgb"] = tmp_path / "rgb.tif"
    tifffile.imwrite(tmp_path / "pages.tif", cube, metadata=None, photometric="minisblack")
    out["pages"] = tmp_path / "pages.tif"
    tifffile.imwrite(tmp_path / "zstack.tif", cube, imagej=True, metadata={"axes": "ZYX"})
    out["zstack"] = tmp_path / "zstack.tif"
    np.save(tmp_path / "array.npy", cube)
    out["npy"] = tmp_path / "array.npy"
    # spectral evidence
    out["own"] = write_stack_tiff(tmp_path / "own.tif", cube)
    tifffile.imwrite(tmp_path / "ij.tif", cube, imagej=True, metadata={"axes": "CYX"})
    out["imagej"] = tmp_path / "ij.tif"
    tifffile.imwrite(tmp_path / "ome.tif", cube, ome=True, metadata={"axes": "CYX"})
    out["ome"] = tmp_path / "ome.tif"
    # an OME-TIFF saved channel-last, its channels interleaved: tifffile's axes YXS
    tifffile.imwrite(tmp_path / "ome_yxc.ome.tif",
                     rng.integers(0, 255, (16, 16, 6), dtype=np.uint8),
                     metadata={"axes": "YXC"}, photometric="minisblack", planarconfig="contig")
    out["ome channel-last"] = tmp_path / "ome_yxc.ome.tif"
    tifffile.imwrite(tmp_path / "side.tif", cube, metadata=None, photometric="minisblack")
    (tmp_path / "side.spectral.csv").write_text("nm\n500\n510\n520\n530\n")
    out["sidecar"] = tmp_path / "side.tif"
    np.save(tmp_path / "side_npy.npy", cube)
    (tmp_path / "side_npy.spectral.csv").write_text("nm\n500\n510\n520\n530\n")
    out["npy+sidecar"] = tmp_path / "side_npy.npy"
    folder = tmp_path / "leica"
    folder.mkdir()
    for c in range(4):
        tifffile.imwrite(folder / f"03_Series004_z000_ch{c:02d}.tif", cube[c])
    (folder / "03.txt").write_text(LEICA_TXT, encoding="latin-1")
    out["leica"] = folder
    return out


DECLINED = ("plane", "rgb", "pages", "zstack", "npy")
CLAIMED = ("own", "imagej", "ome", "ome channel-last", "sidecar", "npy+sidecar", "leica")


def test_get_reader_claims_spectral_stacks_and_declines_the_rest(files):
    for key in DECLINED:
        assert get_reader(str(files[key])) is None, key
    for key in CLAIMED:
        assert get_reader(str(files[key])) is read_layers, key
    # a list is claimed only when every path is
    assert get_reader([str(files["own"]), str(files["plane"])]) is None


@pytest.mark.gui
def test_napari_opens_what_is_declined_and_napari_unmix_the_leica_folder(make_napari_viewer,
                                                                        files):
    from napari.errors import ReaderPluginError
    from napari.settings import get_settings
    from napari.utils.notifications import notification_manager

    viewer = make_napari_viewer()
    plugins = get_settings().plugins
    saved = dict(plugins.extension2reader)
    plugins.extension2reader = {**saved, "*.tif": "napari-unmix"}  # "remember" ticked
    try:
        for key in ("plane", "rgb", "pages"):
            # what File > Open does (plugin=None: viewer.open's default is napari's
            # builtins): napari-unmix refuses the file, so napari's reader dialog offers
            # the other readers; no failed napari-unmix read on the way
            since = len(notification_manager.records)
            with pytest.raises(ReaderPluginError) as info:
                viewer.open(str(files[key]), plugin=None)
            assert "refused the file" in str(info.value.__cause__), key
            said = [str(r.message) for r in notification_manager.records[since:]]
            assert not any("napari-unmix" in m for m in said), said
            (layer,) = viewer.open(str(files[key]), plugin="napari")
            assert layer.data.size > 0
        (layer,) = viewer.open(str(files["imagej"]), plugin=None)  # a spectral stack
        assert layer.metadata["spectral_axis_index"] == 0
    finally:
        plugins.extension2reader = saved
    # the slice folder with its metadata file (napari's builtins read every file of it
    # and fail on 03.txt)
    (layer,) = viewer.open(str(files["leica"]), plugin="napari-unmix")
    assert layer.data.shape == (4, 16, 16)
    assert layer.metadata["spectral_axis_index"] == 0


def test_the_docs_say_which_reader_to_choose():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    guide = (root / "docs" / "user-guide.md").read_text(encoding="utf-8")
    assert "Which reader" in guide and "napari builtins" in guide and "03.txt" in guide
    import napari_unmix._napari.reader as reader

    assert "03.txt" in reader.__doc__ and "declined" in reader.__doc__


def test_ome_zarr_labels_are_left_to_napari_ome_zarr_and_their_image_is_claimed(tmp_path):
    # a label image (image-label) and the labels group hold ids, not spectra
    zarr = pytest.importorskip("zarr")
    from napari_unmix._napari.reader_rule import claim

    root = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w")
    root.create_array("0", data=np.ones((4, 8, 8), np.float32))
    axes = [{"name": n, "type": t} for n, t in (("c", "channel"), ("y", "space"),
                                                ("x", "space"))]
    root.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}]}]}
    group = root.create_group("labels")
    group.attrs["ome"] = {"version": "0.5", "labels": ["cells"]}
    cells = group.create_group("cells")
    cells.create_array("0", data=np.zeros((8, 8), np.uint8))
    cells.attrs["ome"] = {"version": "0.5", "image-label": {}, "multiscales": [
        {"axes": axes[1:], "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1, 1]}]}]}]}
    base = tmp_path / "img.ome.zarr"
    for path, what in ((base / "labels" / "cells", "an OME-Zarr label image"),
                       (base / "labels", "the labels group of an OME-Zarr image")):
        claimed, why = claim(path)
        assert not claimed and why.startswith(what) and "napari-ome-zarr" in why
        assert get_reader(str(path)) is None
    assert get_reader(str(base)) is read_layers


def test_napari_offers_napari_unmix_for_zeiss_lsm_lambda_stacks(tmp_path, write_lsm):
    # the manifest's patterns (npe2 offers a reader a file whose name fnmatches one)
    from fnmatch import fnmatch
    from pathlib import Path

    from npe2 import PluginManifest

    import napari_unmix

    manifest = Path(napari_unmix.__file__).parent / "napari.yaml"
    (reader,) = PluginManifest.from_file(manifest).contributions.readers
    assert any(fnmatch("cells.lsm", p) for p in reader.filename_patterns)
    # the hook claims the file and makes one layer with the wavelengths and pixel sizes
    cube = np.random.default_rng(1).integers(0, 255, (4, 6, 7), dtype=np.uint8)
    starts = 500e-9 + 20e-9 * np.arange(4)
    path = write_lsm(tmp_path / "cells.lsm", cube,
                     wavelengths=np.stack([starts, starts + 20e-9], axis=1),
                     voxel_size=(0.5e-6, 0.5e-6, 0.0))
    assert get_reader(str(path)) is read_layers
    ((data, kwargs, kind),) = read_layers(str(path))
    assert kind == "image"
    np.testing.assert_array_equal(np.asarray(data), cube)
    meta = kwargs["metadata"]
    assert meta["spectral_axis_index"] == 0 and meta["spectral_unit"] == "nm"
    np.testing.assert_allclose(meta["spectral_values"], [510.0, 530.0, 550.0, 570.0],
                               rtol=0, atol=1e-6)
    assert meta["pixel_size"] == {"scale": (1.0, 0.5, 0.5), "units": ("", "um", "um")}
    # an LSM file holding a single image is left to napari, as a single TIFF is
    write_lsm(tmp_path / "one.lsm", cube[:1])
    assert get_reader(str(tmp_path / "one.lsm")) is None
