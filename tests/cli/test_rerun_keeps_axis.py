"""``run --config`` of an earlier result on the same stack: what the result knew stays.

* The first run took the stack's spectral axis from ``--spectra`` (the stack has none);
  the rerun from its result folder recorded channel indices only, so its spectra.csv and
  result.json no longer matched the original's.  It takes the result's axis now, and
  says so.
* A config with ``n_components`` that does not match its components was run with the
  components, silently (``run_analysis`` refuses it); the CLI refuses it too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core import AnalysisConfig
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import read_result_bundle, write_spectra_csv


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("rerun-axis")
    s = make_crs_sample(shape=(12, 10), n_channels=16, random_state=1)
    np.save(d / "stack.npy", s.stack)   # no spectral axis of its own
    write_spectra_csv(d / "refs.csv", s.H, s.spectral_axis, s.component_names, "cm^-1")
    rc = main(["run", str(d / "stack.npy"), "--mode", "seeded-nmf", "--spectra",
               str(d / "refs.csv"), "--max-iter", "20", "--out", str(d / "out1"), "--quiet"])
    assert rc == 0
    return d, s


@pytest.mark.parametrize("name", ["out1", "out1/config.json", "out1/result.npz"])
def test_a_rerun_keeps_the_result_s_spectral_axis(first_run, tmp_path, capsys, name):
    d, s = first_run
    rc = main(["run", str(d / "stack.npy"), "--config", str(d / name), "--out",
               str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "taken to lie where those of the result of --config" in err
    first, again = (read_result_bundle(p).result for p in (d / "out1", tmp_path / "out2"))
    np.testing.assert_allclose(again.spectral_values, s.spectral_axis)
    assert again.spectral_unit == first.spectral_unit == "cm^-1"
    np.testing.assert_array_equal(again.H, first.H)
    info = json.loads((tmp_path / "out2" / "result.json").read_text())
    assert info["spectral_range"] == pytest.approx([s.spectral_axis.min(),
                                                    s.spectral_axis.max()])


def test_a_config_whose_n_components_does_not_match_its_components_is_refused(
        first_run, tmp_path, capsys):
    d, _ = first_run
    cfg = AnalysisConfig.load(d / "out1" / "config.json")
    doc = json.loads((d / "out1" / "config.json").read_text())
    doc["n_components"] = len(cfg.components) + 1
    (tmp_path / "five.json").write_text(json.dumps(doc))
    rc = main(["run", str(d / "stack.npy"), "--config", str(tmp_path / "five.json"),
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc != 0 and not (tmp_path / "o").exists()
    assert f"n_components {len(cfg.components) + 1}" in err and "remove n_components" in err
