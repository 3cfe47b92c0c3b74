"""Every run of ``napari-unmix demo`` writes the config.json that makes it again.

The bare fits (PCA, random NNMF and fixed-H NNLS with each implementation) called the
mode functions directly and wrote no config.json, so a user could not rerun one (the
demo's help says its runs are written "like napari-unmix run does").  Every run is now a
run of its config: ``run sample.tif --config <run>/config.json`` gives its maps.
"""

from __future__ import annotations

import numpy as np
import tifffile

from napari_unmix.cli import main


def test_run_config_of_every_demo_run_gives_its_maps(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--size", "16", "--channels", "12",
                 "--max-iter", "60", "--no-progress", "-q"])
    assert code == 0, capsys.readouterr().err
    runs = sorted(p for p in out.iterdir() if (p / "maps.tif").exists()
                  and p.name != "ground_truth")
    assert len(runs) >= 4
    for run in runs:
        assert (run / "config.json").exists(), run.name
        again = tmp_path / "again" / run.name
        code = main(["run", str(out / "sample.tif"), "--config", str(run / "config.json"),
                     "--out", str(again), "--no-progress", "-q"])
        assert code == 0, (run.name, capsys.readouterr().err)
        np.testing.assert_allclose(tifffile.imread(again / "maps.tif"),
                                   tifffile.imread(run / "maps.tif"), rtol=1e-6, atol=1e-7,
                                   err_msg=run.name)
