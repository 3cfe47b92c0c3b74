"""``write_analysis_outputs(..., labels=)``: the label image of a label-seeded run.

The folder keeps it as ``labels.tif`` (values, dtype and shape exactly) named with its
checksum in ``config.json``'s ``label_image``; labels that are not the result's are
refused before anything is written; without labels the folder holds no label image and
its config names none.  An earlier folder holding ``labels.tif`` is a result folder
that may be replaced.  Failed before: ``labels=`` did not exist.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tifffile

from napari_unmix.core import AnalysisConfig, ComponentSpec, RoiLabel, run_analysis
from napari_unmix.core.analysis import labels_sha256
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import check_output_folder, write_analysis_outputs


@pytest.fixture(scope="module")
def fitted():
    sample = make_crs_sample(shape=(10, 12), n_channels=8, random_state=1)
    labels = np.zeros((10, 12), dtype=np.int32)
    labels[:3, :3], labels[-3:, -3:], labels[:3, -3:] = 1, 2, 3
    cfg = AnalysisConfig(mode="nnls", components=[
        ComponentSpec(f"c{i}", h_source=RoiLabel(i)) for i in (1, 2, 3)])
    res = run_analysis(sample.stack, cfg, spectral_axis=0, labels=labels)
    return res, labels


def test_the_label_image_of_a_result_folder_comes_back_exactly(fitted, tmp_path):
    res, labels = fitted
    files = write_analysis_outputs(tmp_path / "out", res, labels.shape, labels=labels)
    assert files["labels"] == tmp_path / "out" / "labels.tif"
    back = tifffile.imread(files["labels"])
    assert back.dtype == labels.dtype and back.shape == labels.shape
    np.testing.assert_array_equal(back, labels)
    doc = json.loads(files["config"].read_text())
    assert doc["label_image"] == {"path": "labels.tif", "sha256": labels_sha256(labels)}
    check_output_folder(tmp_path / "out")  # an earlier result folder: may be replaced
    files = write_analysis_outputs(tmp_path / "out", res, labels.shape)
    assert "labels" not in files and not (tmp_path / "out" / "labels.tif").exists()
    assert "label_image" not in json.loads(files["config"].read_text())


def test_labels_that_are_not_the_results_are_refused(fitted, tmp_path):
    res, labels = fitted
    other = labels.copy()
    other[5, 5] = 2
    with pytest.raises(ValueError, match="not the label image the result was made with"):
        write_analysis_outputs(tmp_path / "out", res, labels.shape, labels=other)
    with pytest.raises(ValueError, match="integer ids"):
        write_analysis_outputs(tmp_path / "out", dataclasses.replace(
            res, summary=res.summary.replace(labels_sha256=None)), labels.shape,
            labels=labels.astype(np.float32))
    assert not (tmp_path / "out").exists()
