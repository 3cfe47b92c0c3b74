"""A saved setup whose rows keep label ids: the config and its label image beside it.

``write_setup`` writes the label image ``<name>.labels.tif`` and the config naming it
with its checksum (``AnalysisConfig.label_image``); ``read_setup_labels`` gives back
the exact image (values, dtype, shape) and refuses a missing or changed one.  A config
without a label image is written as before (no ``label_image`` key).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.core import AnalysisConfig, ComponentSpec, RoiLabel
from napari_unmix.core.analysis import labels_sha256
from napari_unmix.core.config import LabelImageFile
from napari_unmix.io import read_setup_labels, setup_labels_path, write_setup


def _config():
    return AnalysisConfig(mode="seeded-nmf", random_state=0, components=[
        ComponentSpec("a", h_source=RoiLabel(1)), ComponentSpec("b", h_source=RoiLabel(3))])


@pytest.mark.parametrize("shape, dtype", [((3, 5, 6), np.uint16), ((1, 4, 5), np.uint8),
                                          ((2, 3, 4, 5), np.int32), ((4, 5), np.int64)])
def test_the_label_image_beside_a_setup_comes_back_exactly(tmp_path, shape, dtype):
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 4, size=shape).astype(dtype)
    saved = write_setup(tmp_path / "setup.json", _config(), labels=lab)
    assert saved.config == tmp_path / "setup.json"
    assert saved.labels == setup_labels_path(saved.config) == tmp_path / "setup.labels.tif"
    doc = json.loads(saved.config.read_text())
    assert doc["label_image"] == {"path": "setup.labels.tif", "sha256": labels_sha256(lab)}
    cfg = AnalysisConfig.load(saved.config)
    assert cfg.label_image == LabelImageFile("setup.labels.tif", labels_sha256(lab))
    back = read_setup_labels(cfg, saved.config)
    assert back.dtype == lab.dtype and back.shape == lab.shape
    np.testing.assert_array_equal(back, lab)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["setup.json", "setup.labels.tif"]


def test_a_setup_without_labels_is_written_as_before(tmp_path):
    cfg = _config().replace(label_image=LabelImageFile("old.labels.tif", "0" * 64))
    saved = write_setup(tmp_path / "plain.json", cfg)
    assert saved.labels is None
    doc = json.loads(saved.config.read_text())
    assert "label_image" not in doc
    assert "label_image" not in AnalysisConfig().to_dict()
    assert read_setup_labels(AnalysisConfig.load(saved.config), saved.config) is None


def test_a_missing_or_changed_label_image_is_refused(tmp_path):
    import tifffile

    lab = np.arange(12, dtype=np.uint8).reshape(3, 4) % 4
    saved = write_setup(tmp_path / "setup.json", _config(), labels=lab)
    cfg = AnalysisConfig.load(saved.config)
    tifffile.imwrite(saved.labels, np.where(lab == 3, 0, lab).astype(np.uint8))
    with pytest.raises(ValueError, match="was changed since setup.json was saved"):
        read_setup_labels(cfg, saved.config)
    tifffile.imwrite(saved.labels, lab.astype(np.float32))
    with pytest.raises(ValueError, match="was changed"):
        read_setup_labels(cfg, saved.config)
    saved.labels.write_bytes(b"not a tiff")
    with pytest.raises(ValueError, match="cannot be read"):
        read_setup_labels(cfg, saved.config)
    saved.labels.unlink()
    with pytest.raises(FileNotFoundError, match="setup.labels.tif, which is not beside it"):
        read_setup_labels(cfg, saved.config)


def test_a_failed_write_leaves_no_half_written_file(tmp_path):
    with pytest.raises(ValueError, match="integer ids"):
        write_setup(tmp_path / "setup.json", _config(), labels=np.zeros((3, 4)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("d, match", [
    ({"path": "/abs/labels.tif", "sha256": "0" * 64}, "relative"),
    ({"path": "../labels.tif", "sha256": "0" * 64}, "relative"),
    ({"path": "C:\\labels.tif", "sha256": "0" * 64}, "relative"),
    ({"path": "", "sha256": "0" * 64}, "relative"),
    ({"path": "l.tif", "sha256": "abc"}, "64 hexadecimal"),
    ({"path": "l.tif"}, "path and sha256"),
    ({"path": "l.tif", "sha256": "0" * 64, "shape": [3]}, "path and sha256"),
    ("l.tif", "path and sha256")])
def test_a_hand_edited_label_image_entry_is_refused(d, match):
    doc = {**_config().to_dict(), "label_image": d}
    with pytest.raises(ValueError, match=match):
        AnalysisConfig.from_dict(doc)
