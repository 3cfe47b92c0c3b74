"""OME-Zarr labels are not spectral stacks: a label image (``img.ome.zarr/labels/cells``,
``image-label`` metadata) holds integer ids and the ``labels`` group holds label images.

Opening them is refused with what they are and how to use one as seeds (``--labels``
reads a label image; napari-ome-zarr opens one as a Labels layer for the dock).  They
were read as a (32, 40) "stack" with Y guessed as its spectral axis, and the
``labels`` group named a ``.../labels/stack`` that does not exist.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_unmix.io import open_stack

zarr = pytest.importorskip("zarr")
pytest.importorskip("ome_zarr")

IMAGE = np.random.default_rng(0).random((8, 32, 40)).astype(np.float32)  # (c, y, x)
LABELS = np.zeros((32, 40), np.uint16)
LABELS[5:10, 5:10], LABELS[20:25, 20:30] = 1, 2


def _written_by_ome_zarr(path):
    """An image with two label images, as ome-zarr-py's write_image / write_labels make
    them (OME-Zarr 0.5, zarr v3)."""
    from napari_unmix.io.zarr_stacks import import_ome_zarr

    ome_io, _, ome_writer, _ = import_ome_zarr()
    root = zarr.group(store=ome_io.parse_url(str(path), mode="w").store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ome-zarr's own deprecations
        ome_writer.write_image(IMAGE, group=root, axes="cyx")
        for name in ("cells", "nuclei"):
            ome_writer.write_labels(LABELS, group=root, name=name, axes="yx")
    return path


def _written_by_hand_v2(path):
    """The same in OME-Zarr 0.4 (zarr v2, ``.zattrs``), metadata written to the spec."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array("0", data=IMAGE)
    axes = [{"name": "c", "type": "channel"}, {"name": "y", "type": "space"},
            {"name": "x", "type": "space"}]
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1]}]}]}]
    group = root.create_group("labels")
    group.attrs["labels"] = ["cells"]
    cells = group.create_group("cells")
    cells.create_array("0", data=LABELS)
    cells.attrs["image-label"] = {"version": "0.4"}
    cells.attrs["multiscales"] = [{"version": "0.4", "axes": axes[1:], "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1]}]}]}]
    return path


@pytest.fixture(params=["ome-zarr v3", "by hand v2"])
def image(request, tmp_path):
    make = _written_by_ome_zarr if request.param == "ome-zarr v3" else _written_by_hand_v2
    return make(tmp_path / "img.ome.zarr")


def test_a_label_image_is_refused_as_one_naming_how_to_use_it_as_seeds(image):
    with pytest.raises(ValueError) as info:
        open_stack(image / "labels" / "cells")
    msg = str(info.value)
    assert "is an OME-Zarr label image" in msg and "not a spectral stack" in msg
    assert f"of the image {image}" in msg
    assert f"--labels {image / 'labels' / 'cells'}" in msg
    assert "--mode seeded-nmf" in msg
    assert "napari-ome-zarr" in msg and "'Components from layer'" in msg


def test_the_labels_group_is_refused_listing_its_label_images(image):
    with pytest.raises(ValueError) as info:
        open_stack(image / "labels")
    msg = str(info.value)
    assert "labels group of an OME-Zarr image" in msg
    assert "the label images cells" in msg or "the label image cells" in msg
    assert f"Open the image itself, {image}" in msg
    assert "labels/stack" not in msg


def test_the_image_beside_its_labels_still_opens(image):
    s = open_stack(image)
    assert s.axes == "CYX" and s.spectral_axis == 0 and s.data.shape == IMAGE.shape


def test_read_zarr_labels_gives_level_0_and_refuses_the_group(image):
    from napari_unmix.io.zarr_stacks import read_zarr_labels

    np.testing.assert_array_equal(read_zarr_labels(image / "labels" / "cells"), LABELS)
    with pytest.raises(ValueError, match=r"not an OME-Zarr label image .*e\.g\. .*labels/cells"):
        read_zarr_labels(image / "labels")
    with pytest.raises(ValueError, match="not an OME-Zarr label image"):
        read_zarr_labels(image)
