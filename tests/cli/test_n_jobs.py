"""``run --n-jobs`` (issue 11): validated by the parser, passed to every mode, recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.cli.run import MODE_FLAGS
from napari_unmix.core.synthetic import make_crs_sample


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    d = tmp_path_factory.mktemp("n-jobs")
    np.save(d / "s.npy", make_crs_sample(shape=(24, 24), n_channels=16).stack)
    return d / "s.npy"


@pytest.mark.parametrize(("value", "says"), [
    ("0", "--n-jobs=0 would run no worker"),
    ("-2", "--n-jobs=-2 is not supported"),
    ("two", "'two' is not an integer"),
])
def test_bad_values_are_refused_naming_the_flag(capsys, stack, tmp_path, value, says):
    assert main(["run", str(stack), "--mode", "pca", "-k", "2", "--n-jobs", value,
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert says in err and "None" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("mode", ["pca", "nmf"])
def test_n_jobs_reaches_the_result(capsys, stack, tmp_path, mode):
    out = tmp_path / mode
    seed = ["--random-state", "0"] if mode == "nmf" else []
    assert main(["run", str(stack), "--mode", mode, "-k", "2", "--n-jobs", "1", *seed,
                 "--spectral-axis", "0", "--out", str(out)]) == 0, capsys.readouterr().err
    doc = json.loads((out / "result.json").read_text())
    assert doc["summary"]["n_jobs"] == 1 and doc["summary"]["device"] == "cpu"
    assert doc["params"]["config"]["n_jobs"] == 1


def test_the_flag_is_a_mode_flag():
    assert MODE_FLAGS["n_jobs"] == ("--n-jobs", "n_jobs")
