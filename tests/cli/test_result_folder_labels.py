"""A result folder of a run seeded from label ids keeps its label image.

The folder holds ``labels.tif`` (the exact ids, dtype and shape the run was given) and
its ``config.json`` names it with its checksum (``label_image``), so ``run --config
RESULT_DIR`` reruns without ``--labels`` with the same maps: a single fit, a per-slice
series (every plane from its own labels) and a shared basis from plane N (whose fit
was given plane N's labels).  A series result records the checksum of its labels
(``summary.labels_sha256``), so a ``--labels`` image of other ids is refused for a
series rerun as for a single fit's.  A run without label seeds writes no label image
and a config as before.

Each test of the label image failed before (no ``labels.tif``: the rerun without
``--labels`` was refused; a series' wrong ``--labels`` was accepted).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_unmix.cli import main
from napari_unmix.core import UnmixResult
from napari_unmix.core.analysis import labels_sha256
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import read_maps_tiff


def _cli(capsys, *argv):
    capsys.readouterr()
    rc = main([str(a) for a in argv] + ["--no-progress", "--quiet"])
    return rc, capsys.readouterr().err


def _same_maps(a, b):
    ra, rb = UnmixResult.load(a / "result.npz"), UnmixResult.load(b / "result.npz")
    assert ra.W.dtype == rb.W.dtype
    assert np.array_equal(ra.W, rb.W) and np.array_equal(ra.H, rb.H)
    np.testing.assert_array_equal(read_maps_tiff(a / "maps.tif")[0],
                                  read_maps_tiff(b / "maps.tif")[0])


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    d = tmp_path_factory.mktemp("image")
    sample = make_crs_sample(shape=(14, 12), n_channels=10, random_state=4)
    np.save(d / "stack.npy", sample.stack)  # (C, Y, X): --spectral-axis 0
    # every pixel labelled with the component that dominates it, the weakest left out
    labels = (np.argmax(sample.W, axis=1) + 1).astype(np.uint8)
    labels[sample.W.max(axis=1) < np.median(sample.W.max(axis=1))] = 0
    labels = labels.reshape(sample.stack.shape[1:])
    tifffile.imwrite(d / "rois.tif", labels)
    other = labels.copy()
    other[0, :3] = 1
    tifffile.imwrite(d / "other.tif", other)
    return d, labels


def _image_run(capsys, d, *flags):
    return _cli(capsys, "run", d / "stack.npy", "--spectral-axis", "0", *flags)


def test_a_label_seeded_result_folder_reruns_without_labels(image, tmp_path, capsys,
                                                             kept_labels):
    d, labels = image
    first = tmp_path / "first"
    rc, err = _image_run(capsys, d, "--mode", "seeded-nmf", "--labels", d / "rois.tif",
                         "--max-iter", "20", "--out", first)
    assert rc == 0, err
    kept_labels(first, labels)
    rc, err = _image_run(capsys, d, "--config", first, "--out", tmp_path / "b")
    assert rc == 0, err
    _same_maps(first, tmp_path / "b")
    kept_labels(tmp_path / "b", labels)
    doc = json.loads((tmp_path / "b" / "result.json").read_text())
    assert doc["labels_file"] == str((first / "labels.tif").resolve())
    # another label image is still refused, a changed labels.tif too
    rc, err = _image_run(capsys, d, "--config", first, "--labels", d / "other.tif",
                         "--out", tmp_path / "x")
    assert rc == 2 and "--labels" in err and "--new-labels" in err, err
    tifffile.imwrite(first / "labels.tif", np.where(labels == 2, 0, labels))
    rc, err = _image_run(capsys, d, "--config", first, "--out", tmp_path / "y")
    assert rc == 2 and "labels.tif beside --config" in err, err
    assert "since the result was written" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_run_without_label_seeds_keeps_no_label_image(image, tmp_path, capsys):
    d, _ = image
    out = tmp_path / "nmf"
    rc, err = _image_run(capsys, d, "--mode", "nmf", "-k", "3", "--max-iter", "10",
                         "--random-state", "0", "--out", out)
    assert rc == 0, err
    assert not (out / "labels.tif").exists()
    assert "label_image" not in json.loads((out / "config.json").read_text())
    # a folder of a label-seeded run, replaced whole by one without: its labels.tif goes
    rc, err = _image_run(capsys, d, "--mode", "seeded-nmf", "--labels", d / "rois.tif",
                         "--max-iter", "5", "--out", out)
    assert rc == 0 and (out / "labels.tif").is_file(), err
    rc, err = _image_run(capsys, d, "--mode", "nmf", "-k", "3", "--max-iter", "10",
                         "--random-state", "0", "--out", out)
    assert rc == 0, err
    assert not (out / "labels.tif").exists()


@pytest.fixture
def series(plane_labelled_series, tmp_path):
    zs, lab = plane_labelled_series.sample, plane_labelled_series.labels
    np.save(tmp_path / "stack.npy", zs.stack)
    np.save(tmp_path / "lab.npy", lab)
    np.save(tmp_path / "other.npy", np.where(lab == 1, 2, np.where(lab == 2, 1, lab)))
    return lab


def _series_run(capsys, tmp_path, *flags):
    return _cli(capsys, "run", tmp_path / "stack.npy", "--spectral-axis", "1", *flags)


@pytest.mark.parametrize("strategy, reference", [("per-slice", "0"), ("shared-basis", "1")])
def test_a_label_seeded_series_reruns_from_its_folder(series, tmp_path, capsys, strategy,
                                                       reference, kept_labels):
    lab = series
    first = tmp_path / "first"
    rc, err = _series_run(capsys, tmp_path, "--mode", "seeded-nmf", "--labels",
                          tmp_path / "lab.npy", "--strategy", strategy, "--reference",
                          reference, "--max-iter", "30", "--random-state", "0", "--out", first)
    assert rc == 0, err
    # the labels the fits were given: every plane's, or plane N's for a basis from plane N
    given = lab if strategy == "per-slice" else lab[int(reference)]
    kept_labels(first, given)
    summary = json.loads((first / "result.json").read_text())["summary"]
    assert summary["labels_sha256"] == labels_sha256(given)
    rc, err = _series_run(capsys, tmp_path, "--config", first, "--out", tmp_path / "again")
    assert rc == 0, err
    _same_maps(first, tmp_path / "again")
    # the label image given to the first run is the one recorded, whole or placed
    rc, err = _series_run(capsys, tmp_path, "--config", first, "--labels",
                          tmp_path / "lab.npy", "--out", tmp_path / "given")
    assert rc == 0, err
    _same_maps(first, tmp_path / "given")


@pytest.mark.parametrize("strategy, reference", [("per-slice", "0"), ("shared-basis", "1")])
def test_a_series_rerun_refuses_labels_of_other_ids(series, tmp_path, capsys, strategy,
                                                    reference):
    first = tmp_path / "first"
    rc, err = _series_run(capsys, tmp_path, "--mode", "seeded-nmf", "--labels",
                          tmp_path / "lab.npy", "--strategy", strategy, "--reference",
                          reference, "--max-iter", "10", "--random-state", "0", "--out", first)
    assert rc == 0, err
    # labels of other ids are refused, naming the flag, and nothing is written
    rc, err = _series_run(capsys, tmp_path, "--config", first, "--labels",
                          tmp_path / "other.npy", "--out", tmp_path / "other")
    assert rc == 2, err
    assert "--labels" in err and "other.npy" in err and "--new-labels" in err, err
    assert not (tmp_path / "other").exists()
    rc, err = _series_run(capsys, tmp_path, "--config", first, "--labels",
                          tmp_path / "other.npy", "--new-labels", "--out", tmp_path / "new")
    assert rc == 0, err
