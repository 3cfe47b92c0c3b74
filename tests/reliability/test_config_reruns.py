"""Issue 14, item 9: every run writes a config that ``--config`` reruns, bit for bit.

Every run's folder holds ``config.json`` (the resolved ``AnalysisConfig``, with the
random state it drew); ``--config`` takes it, the result folder itself, or its
``result.npz``, and the rerun gives the same bits.  A rerun whose ``--labels`` image
is not the one the result was made with (its ``labels_sha256``) is refused unless
``--new-labels``; label-id seeds without ``--labels`` are refused with what to pass.

Each test failed on the code before (no config.json; a folder was no config; the
label image was never compared), checked against a worktree of that commit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_unmix.cli import main
from napari_unmix.core import AnalysisConfig, UnmixResult
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import read_maps_tiff, write_spectra_csv, write_stack_tiff


def cli(capsys, *argv):
    rc = main([str(a) for a in argv] + ["--no-progress", "--quiet"])
    out, err = capsys.readouterr()
    return rc, err


def ok(capsys, *argv):
    rc, err = cli(capsys, *argv)
    assert rc == 0, err


def refused(capsys, *argv) -> str:
    rc, err = cli(capsys, *argv)
    lines = [ln for ln in err.splitlines() if ln.startswith("napari-unmix: error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, err)
    return lines[0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    sample = make_crs_sample(shape=(14, 12), n_channels=10, random_state=4)
    d = tmp_path_factory.mktemp("inputs")
    write_stack_tiff(d / "stack.tif", sample.stack, axes="CYX",
                     spectral_values=sample.spectral_axis, spectral_unit="cm^-1")
    write_spectra_csv(d / "h.csv", sample.H, sample.spectral_axis, sample.component_names,
                      "cm^-1")
    share = sample.W / sample.W.sum(axis=1, keepdims=True)
    labels = np.zeros(sample.W.shape[0], dtype=np.uint8)
    for j in range(3):
        labels[np.argsort(share[:, j])[::-1][:10]] = j + 1
    tifffile.imwrite(d / "rois.tif", labels.reshape(sample.stack.shape[1:]))
    other = labels.reshape(sample.stack.shape[1:]).copy()
    other[0, :3] = 1  # the same ids, three more pixels: another label image
    tifffile.imwrite(d / "other.tif", other)
    return d


def same_bits(a, b):
    ra, rb = UnmixResult.load(a / "result.npz"), UnmixResult.load(b / "result.npz")
    assert np.array_equal(ra.W, rb.W) and np.array_equal(ra.H, rb.H)
    assert ra.W.dtype == rb.W.dtype
    np.testing.assert_array_equal(read_maps_tiff(a / "maps.tif")[0],
                                  read_maps_tiff(b / "maps.tif")[0])
    assert (a / "spectra.csv").read_bytes() == (b / "spectra.csv").read_bytes()
    assert json.loads((a / "config.json").read_text()) == \
        json.loads((b / "config.json").read_text())


@pytest.mark.parametrize("mode_args", [
    ("--mode", "pca", "-k", "3"),
    ("--mode", "nmf", "-k", "3", "--max-iter", "30"),  # random state drawn, and recorded
    ("--mode", "nnls", "--spectra", "{d}/h.csv"),
    ("--mode", "seeded-nmf", "--spectra", "{d}/h.csv", "--max-iter", "20"),
], ids=["pca", "nmf", "nnls", "seeded-nmf"])
def test_every_run_writes_a_config_that_reruns_bit_for_bit(tmp_path, capsys, inputs,
                                                           mode_args):
    args = [a.format(d=inputs) for a in mode_args]
    first = tmp_path / "first"
    ok(capsys, "run", inputs / "stack.tif", *args, "--out", first)
    cfg = AnalysisConfig.load(first / "config.json")
    res = UnmixResult.load(first / "result.npz")
    assert cfg.to_json() == res.config.to_json()
    assert cfg.random_state is not None  # the drawn one: the rerun draws the same
    # --config takes config.json, the result folder, and its result.npz
    for i, given in enumerate((first / "config.json", first, first / "result.npz")):
        again = tmp_path / f"again{i}"
        ok(capsys, "run", inputs / "stack.tif", "--config", given, "--out", again)
        same_bits(first, again)
    # a result folder written before config.json existed: the config inside result.npz
    old = tmp_path / "old"
    old.mkdir()
    for name in ("maps.tif", "spectra.csv", "composite.png", "result.json", "result.npz"):
        (old / name).write_bytes((first / name).read_bytes())
    ok(capsys, "run", inputs / "stack.tif", "--config", old, "--out", tmp_path / "from-old")
    same_bits(first, tmp_path / "from-old")


def test_the_readme_rerun_with_labels(tmp_path, capsys, inputs, monkeypatch):
    # napari-unmix run stack.tif --config results/config.json --labels rois.tif --out rerun/
    monkeypatch.chdir(inputs)
    ok(capsys, "run", "stack.tif", "--mode", "seeded-nmf", "--labels", "rois.tif",
       "--max-iter", "20", "--out", tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    ok(capsys, "run", inputs / "stack.tif", "--config", "results/config.json", "--labels",
       inputs / "rois.tif", "--out", "rerun/")
    same_bits(tmp_path / "results", tmp_path / "rerun")


def test_another_label_image_is_refused_unless_asked_for(tmp_path, capsys, inputs):
    first = tmp_path / "first"
    ok(capsys, "run", inputs / "stack.tif", "--mode", "seeded-nmf", "--labels",
       inputs / "rois.tif", "--max-iter", "20", "--out", first)
    for given in (first / "config.json", first, first / "result.npz"):
        line = refused(capsys, "run", inputs / "stack.tif", "--config", given, "--labels",
                       inputs / "other.tif", "--out", tmp_path / "x")
        assert "other.tif" in line and "--new-labels" in line and "checksum" in line, line
    assert not (tmp_path / "x").exists()
    ok(capsys, "run", inputs / "stack.tif", "--config", first, "--labels", inputs / "other.tif",
       "--new-labels", "--out", tmp_path / "new")
    seeds = UnmixResult.load(tmp_path / "new" / "result.npz").arrays["H0"]
    assert not np.array_equal(seeds, UnmixResult.load(first / "result.npz").arrays["H0"])
    # label-id seeds and no label image (a result.npz keeps none): say what to pass
    line = refused(capsys, "run", inputs / "stack.tif", "--config", first / "result.npz",
                   "--out", tmp_path / "y")
    assert "--labels" in line and "label 1" in line, line


@pytest.mark.parametrize("mode", ["nmf", "nnls"])
def test_a_result_made_without_run_says_which_options_rerun_it(inputs, tmp_path, capsys,
                                                               mode):
    """A result folder of a fit called directly (the demo's runs) holds no config:
    ``--config`` of it names the options that repeat it (before: 'its params alone
    describe the run'), and those options give the same maps."""
    import dataclasses
    import shlex

    from napari_unmix.core import nmf, nnls, stack_to_matrix
    from napari_unmix.io import open_stack, write_analysis_outputs

    stack = open_stack(inputs / "stack.tif")
    X, shape = stack_to_matrix(stack.data, 0)
    H = np.loadtxt(inputs / "h.csv", delimiter=",", skiprows=1)[:, 1:].T
    res = nmf(X, 3, max_iter=30, random_state=5) if mode == "nmf" else nnls(X, H)
    res = dataclasses.replace(res, spectral_values=stack.spectral_values,  # as the demo
                              spectral_unit=stack.spectral_unit)
    write_analysis_outputs(tmp_path / "fit", res, shape)
    line = refused(capsys, "run", inputs / "stack.tif", "--config", tmp_path / "fit",
                   "--out", tmp_path / "again")
    assert "holds no analysis config" in line and f"--mode {mode}" in line
    flags = shlex.split(line.split("give its settings as options instead: ")[1][:-1])
    ok(capsys, "run", inputs / "stack.tif", *flags, "--out", tmp_path / "again")
    again = UnmixResult.load(tmp_path / "again" / "result.npz")
    np.testing.assert_allclose(again.W, res.W, rtol=1e-6, atol=1e-7)
