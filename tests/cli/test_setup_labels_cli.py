"""``run --config SETUP`` of a setup saved beside its label image.

A setup whose rows are label ids names its label image (``setup.labels.tif`` beside
``setup.json``, with its checksum): ``run --config setup.json --strategy per-slice``
reads it without ``--labels`` and seeds every plane from its own labels, as
``unmix_series`` does with that image; the result records the file it read and keeps
a copy of its own (``labels.tif`` in the result folder); a missing or changed file, or
a ``--labels`` image of other ids, is refused with what to do, and nothing is written.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core import AnalysisConfig, ComponentSpec, RoiLabel
from napari_unmix.core.series import SeriesResult, unmix_series
from napari_unmix.io import read_result_bundle, write_setup


@pytest.fixture
def setup(plane_labelled_series, tmp_path):
    """A seeded setup of label ids, and labels painted on every plane on its own."""
    zs, lab = plane_labelled_series.sample, plane_labelled_series.labels
    cfg = AnalysisConfig(mode="seeded-nmf", solver="hals", backend="numpy", max_iter=60,
                         tol=1e-3, random_state=0, components=[
                             ComponentSpec(f"c{i + 1}", h_source=RoiLabel(i + 1))
                             for i in range(zs.n_components)])
    saved = write_setup(tmp_path / "setup.json", cfg, labels=lab)
    np.save(tmp_path / "stack.npy", zs.stack)
    return zs, cfg, lab, saved


def _run(tmp_path, config, *flags, out="out"):
    return main(["run", str(tmp_path / "stack.npy"), "--spectral-axis", "1", "--config",
                 str(config), "--strategy", "per-slice", *flags, "--out", str(tmp_path / out),
                 "--quiet", "--no-progress"])


def test_the_label_image_beside_a_setup_seeds_every_plane(setup, tmp_path):
    zs, cfg, lab, saved = setup
    assert _run(tmp_path, saved.config) == 0
    cli = SeriesResult.from_result(read_result_bundle(tmp_path / "out").result,
                                   zs.maps.shape[1:])
    expected = unmix_series(zs.stack, cfg, strategy="per-slice", series_axis=0,
                            spectral_axis=1, reference=0, labels=lab)
    np.testing.assert_allclose(cli.maps, expected.maps, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cli.H, expected.H, rtol=1e-6, atol=1e-9)
    doc = json.loads((tmp_path / "out" / "result.json").read_text())
    assert doc["labels_file"] == str(saved.labels.resolve())
    # the result folder keeps the label image of its own (labels.tif, named in its config)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["label_image"][
        "path"] == "labels.tif"
    # the result folder's config reruns with the label image given
    assert _run(tmp_path, tmp_path / "out", "--labels", str(saved.labels), out="again") == 0
    again = SeriesResult.from_result(read_result_bundle(tmp_path / "again").result,
                                     zs.maps.shape[1:])
    np.testing.assert_array_equal(again.maps, cli.maps)


def test_a_missing_changed_or_other_label_image_is_refused(setup, tmp_path, capsys):
    import tifffile

    _, _, lab, saved = setup
    np.save(tmp_path / "other.npy", np.where(lab == 1, 2, np.where(lab == 2, 1, lab)))
    capsys.readouterr()
    assert _run(tmp_path, saved.config, "--labels", str(tmp_path / "other.npy")) == 2
    err = capsys.readouterr().err
    assert "is not the one --config" in err and "was saved with" in err
    assert _run(tmp_path, saved.config, "--labels", str(tmp_path / "other.npy"),
                "--new-labels") == 0   # asked for
    tifffile.imwrite(saved.labels, np.where(lab == 2, 0, lab), photometric="minisblack")
    assert _run(tmp_path, saved.config, out="changed") == 2
    err = capsys.readouterr().err
    assert "setup.labels.tif beside --config" in err and "changed since the setup was saved" \
        in err
    saved.labels.unlink()
    assert _run(tmp_path, saved.config, out="missing") == 2
    err = capsys.readouterr().err
    assert "setup.labels.tif saved beside it, which is not there" in err and "--labels" in err
    assert not (tmp_path / "changed").exists() and not (tmp_path / "missing").exists()
