"""napari-unmix suggest-k and suggest: the unsupervised start from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core import UnmixResult
from napari_unmix.core.synthetic import make_crs_sample


@pytest.fixture(scope="module")
def stack_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("suggest-inputs")
    s = make_crs_sample(shape=(40, 40))
    np.save(d / "s.npy", s.stack)
    return d / "s.npy"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_suggest_k_prints_the_curves_and_the_suggestion(capsys, stack_file, tmp_path):
    code, out, err = run(capsys, "suggest-k", stack_file, "--spectral-axis", "0",
                         "--k-max", "6", "--json", tmp_path / "k.json")
    assert code == 0, err
    assert "suggested k = 4 (scree 4, residual 4, cross-validation 4)" in out
    lines = [ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]
    assert [int(ln.split()[0]) for ln in lines[:6]] == [1, 2, 3, 4, 5, 6]
    assert sum("*" in ln for ln in lines[:6]) == 4  # eigenvalues above the noise edge
    saved = json.loads((tmp_path / "k.json").read_text())
    assert saved["k"] == 4 and saved["ks"] == [1, 2, 3, 4, 5, 6]


def test_suggest_runs_seeded_nmf_and_its_config_reruns(capsys, stack_file, tmp_path):
    out_dir, seeds = tmp_path / "out", tmp_path / "seeds.tif"
    code, out, err = run(capsys, "suggest", stack_file, "--spectral-axis", "0", "--k-max", "6",
                         "--out", out_dir, "--seeds", seeds, "--save-config",
                         tmp_path / "cfg.json")
    assert code == 0, err
    assert "4 seed regions (purest)" in out and "done: seeded-nmf" in out
    res = UnmixResult.load(out_dir / "result.npz")
    assert res.mode == "seeded-nmf" and res.n_components == 4
    doc = json.loads((out_dir / "result.json").read_text())
    assert doc["suggestion"]["n_components"] == 4 and doc["suggestion"]["k"]["k"] == 4
    # the written config reruns the same analysis
    code, _, err = run(capsys, "run", stack_file, "--spectral-axis", "0", "--config",
                       out_dir / "config.json", "--out", tmp_path / "again", "-q")
    assert code == 0, err
    again = UnmixResult.load(tmp_path / "again" / "result.npz")
    assert np.array_equal(again.H, res.H)
    # the seed regions, edited or not, seed a run from a label image
    import tifffile

    labels = tifffile.imread(seeds)
    assert labels.shape == (40, 40) and set(np.unique(labels)) <= {0, 1, 2, 3, 4}
    code, _, err = run(capsys, "run", stack_file, "--spectral-axis", "0", "--mode",
                       "seeded-nmf", "--labels", seeds, "--out", tmp_path / "labels", "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "cfg.json").read_text())["mode"] == "seeded-nmf"


def test_suggest_with_k_and_no_run(capsys, stack_file, tmp_path):
    code, out, err = run(capsys, "suggest", stack_file, "--spectral-axis", "0", "-k", "3",
                         "--no-run", "--seeds", tmp_path / "s.npy", "--method", "ward")
    assert code == 0, err
    assert "3 seed regions (ward)" in out and "suggested k" not in out
    assert np.load(tmp_path / "s.npy").max() == 3


@pytest.mark.parametrize("args, message", [
    (["--no-run"], "--no-run writes only"),
    ([], "give --out DIR"),
    (["--no-run", "--seeds", "x.png"], "give a .tif or .npy"),
])
def test_suggest_refuses_what_it_cannot_do(capsys, stack_file, tmp_path, args, message):
    args = [a if a != "x.png" else tmp_path / a for a in args]
    code, _, err = run(capsys, "suggest", stack_file, "--spectral-axis", "0", "-k", "3", *args)
    assert code == 2 and message in err
