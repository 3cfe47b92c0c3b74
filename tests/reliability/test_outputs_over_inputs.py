"""Issue 14, item 2 and the empty ``--out`` of item 10: outputs never overwrite inputs.

``--out`` may not be, hold or lie inside the input stack, ``--spectra``,
``--labels`` or ``--config`` (paths resolved, symbolic links followed); ``--out ''``
is refused; a folder with the user's own files is refused.  Each is one line naming
the input and the fix, exit status 2, before anything is computed, and nothing is
written.  A run that fails leaves no ``--out`` folder (it is created only with the
outputs).

Each test failed on the code before (it replaced the inputs, wrote into the current
folder, or left an empty folder), checked against a worktree of that commit.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import write_spectra_csv, write_stack_tiff


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(capsys, *argv):
    rc = main([str(a) for a in argv] + ["--no-progress", "--quiet"])
    out, err = capsys.readouterr()
    return rc, out, err


def refused(capsys, *argv) -> str:
    rc, out, err = cli(capsys, *argv)
    lines = [ln for ln in err.splitlines() if ln.startswith("napari-unmix: error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, out, err)
    return lines[0]


@pytest.fixture(scope="module")
def sample():
    return make_crs_sample(shape=(12, 10), n_channels=8, random_state=2)


@pytest.fixture
def res(tmp_path, sample, capsys):
    """A result folder of an earlier run, as the issue's user had."""
    stack = tmp_path / "cells.tif"
    write_stack_tiff(stack, sample.stack, axes="CYX", spectral_values=sample.spectral_axis)
    write_spectra_csv(tmp_path / "h.csv", sample.H, sample.spectral_axis)
    rc, _, err = cli(capsys, "run", stack, "--mode", "nnls", "--spectra", tmp_path / "h.csv",
                     "--out", tmp_path / "res")
    assert rc == 0, err
    return tmp_path / "res"


def test_a_result_used_as_input_is_not_replaced_by_its_own_outputs(tmp_path, capsys, res):
    # the issue: napari-unmix run res/maps.tif --spectra res/spectra.csv --out res
    before = snapshot(res)
    line = refused(capsys, "run", res / "maps.tif", "--mode", "pca", "-k", 2, "--out", res)
    assert "holds the input stack" in line and "maps.tif" in line and "--out" in line
    assert "res-unmixed" in line  # the fix: a folder that holds none of the inputs
    assert snapshot(res) == before
    line = refused(capsys, "run", res / "maps.tif", "--mode", "nnls", "--spectra",
                   res / "spectra.csv", "--out", res)
    assert "holds the input stack" in line
    line = refused(capsys, "run", tmp_path / "cells.tif", "--mode", "nnls", "--spectra",
                   res / "spectra.csv", "--out", res)
    assert "holds --spectra" in line and "spectra.csv" in line
    assert snapshot(res) == before


def test_out_is_or_holds_any_input(tmp_path, capsys, sample):
    d = tmp_path / "data"
    d.mkdir()
    write_stack_tiff(d / "maps.tif", sample.stack, axes="CYX")  # named like an output
    np.save(d / "labels.npy", np.ones(sample.stack.shape[1:], dtype=np.uint8))
    (d / "config.json").write_text('{"mode": "pca", "n_components": 2}')
    stack = tmp_path / "s.tif"
    write_stack_tiff(stack, sample.stack, axes="CYX")
    before = snapshot(d)
    for given, extra, what in ((d / "maps.tif", (), "the input stack"),
                               (stack, ("--labels", d / "labels.npy"), "--labels"),
                               (stack, ("--config", d / "config.json"), "--config")):
        line = refused(capsys, "run", given, "--mode", "pca", "-k", 2, *extra, "--out", d)
        assert f"holds {what}" in line, line
    # --out equal to an input, or inside a stack that is a folder of slices
    line = refused(capsys, "run", d / "maps.tif", "--mode", "pca", "-k", 2, "--out",
                   d / "maps.tif")
    assert "is the input stack" in line
    slices = tmp_path / "slices"
    slices.mkdir()
    line = refused(capsys, "run", slices, "--mode", "pca", "-k", 2, "--out", slices / "out")
    assert "is inside the input stack" in line
    assert snapshot(d) == before and not (slices / "out").exists()


def test_symbolic_links_are_followed(tmp_path, capsys, sample):
    d = tmp_path / "data"
    d.mkdir()
    write_stack_tiff(d / "cells.tif", sample.stack, axes="CYX")
    (tmp_path / "link").symlink_to(d, target_is_directory=True)
    (tmp_path / "cells-link.tif").symlink_to(d / "cells.tif")
    before = snapshot(d)
    line = refused(capsys, "run", d / "cells.tif", "--mode", "pca", "-k", 2,
                   "--out", tmp_path / "link")
    assert "holds the input stack" in line
    line = refused(capsys, "run", tmp_path / "cells-link.tif", "--mode", "pca", "-k", 2,
                   "--out", d)
    assert "holds the input stack" in line and "cells-link.tif" in line
    assert snapshot(d) == before


def test_empty_out_is_refused(tmp_path, capsys, monkeypatch, sample):
    stack = tmp_path / "in" / "s.tif"
    stack.parent.mkdir()
    write_stack_tiff(stack, sample.stack, axes="CYX")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for out in ("", "  "):
        line = refused(capsys, "run", stack, "--mode", "pca", "-k", 2, "--out", out)
        assert "--out is empty" in line
    assert os.listdir(work) == []


def test_a_folder_with_the_users_files_is_refused(tmp_path, capsys, sample, res):
    stack = tmp_path / "cells.tif"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    line = refused(capsys, "run", stack, "--mode", "pca", "-k", 2, "--out", mine)
    assert "notes.txt" in line and "no part of a napari-unmix result" in line
    assert snapshot(mine) == {"notes.txt": b"mine"}
    # an earlier result folder is replaced whole ...
    rc, _, err = cli(capsys, "run", stack, "--mode", "pca", "-k", 2, "--out", res)
    assert rc == 0, err
    # ... but not once the user has put a file of their own into it
    (res / "figure.svg").write_text("<svg/>")
    before = snapshot(res)
    line = refused(capsys, "run", stack, "--mode", "pca", "-k", 3, "--out", res)
    assert "figure.svg" in line and snapshot(res) == before


@pytest.mark.parametrize("failure", ["error", "interrupt", "full disk"])
def test_a_failed_run_leaves_no_out_folder(tmp_path, capsys, monkeypatch, sample, failure):
    import napari_unmix.cli.run as run_mod

    stack = tmp_path / "s.tif"
    write_stack_tiff(stack, sample.stack, axes="CYX")
    if failure == "full disk":
        real = os.replace

        def replace(src, dst, *args, **kwargs):
            if str(dst).endswith("result.npz"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(src, dst, *args, **kwargs)
        monkeypatch.setattr(os, "replace", replace)
    else:
        def fail(*args, **kwargs):
            raise (ValueError("the fit failed") if failure == "error" else KeyboardInterrupt)
        monkeypatch.setattr(run_mod, "run_analysis", fail)
    rc, _, err = cli(capsys, "run", stack, "--mode", "pca", "-k", 2, "--out",
                     tmp_path / "new" / "deep" / "out")
    assert rc == (130 if failure == "interrupt" else 2), err
    assert sorted(os.listdir(tmp_path)) == ["s.tif"]  # no out, none of its parents
