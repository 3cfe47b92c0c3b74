"""Output files of suggest, suggest-k and demo never replace the user's files."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core.synthetic import make_crs_sample


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def victim(tmp_path):
    s = make_crs_sample(shape=(16, 16), n_channels=12)
    np.save(tmp_path / "s.npy", s.stack)
    np.savetxt(tmp_path / "s.spectral.csv", s.spectral_axis, header="wavenumber (cm^-1)",
               comments="")
    return tmp_path / "s.npy", tmp_path / "s.spectral.csv"


def _refused(capsys, *args):
    code = main([str(a) for a in args])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("target", ["stack", "sidecar"])
@pytest.mark.parametrize("how", [("suggest", "--no-run", "--seeds"),
                                 ("suggest", "--no-run", "--save-config"),
                                 ("suggest-k", "--json")])
def test_a_suggestion_never_overwrites_the_stack_or_its_spectral_axis(capsys, victim,
                                                                      target, how):
    stack, sidecar = victim
    path = stack if target == "stack" else sidecar
    before = _digest(stack), _digest(sidecar)
    cmd, *flags = how
    err = _refused(capsys, cmd, stack, "--spectral-axis", "0", *(["-k", "3"] if
                   cmd == "suggest" else []), *flags, path)
    assert f"{flags[-1]} {path}" in err and "would replace" in err
    assert (_digest(stack), _digest(sidecar)) == before


def test_suggest_refuses_two_outputs_in_one_file(capsys, victim, tmp_path):
    stack, _ = victim
    err = _refused(capsys, "suggest", stack, "--spectral-axis", "0", "-k", "3", "--no-run",
                   "--seeds", tmp_path / "x.tif", "--save-config", tmp_path / "x.tif")
    assert "--save-config" in err and "--seeds" in err
    assert not (tmp_path / "x.tif").exists()


def _demo(out):
    return ("demo", "--out", out, "--size", 12, "--channels", 8, "--max-iter", 10,
            "--no-progress")


def test_demo_refuses_a_folder_of_the_users_files_before_writing(capsys, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "sample.tif").write_bytes(b"my own sample")
    err = _refused(capsys, *_demo(out))
    assert "notes.txt" in err
    assert (out / "sample.tif").read_bytes() == b"my own sample"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "sample.tif"]


def test_demo_refuses_user_files_inside_its_own_folders(capsys, tmp_path):
    out = tmp_path / "d"
    (out / "ground_truth").mkdir(parents=True)
    (out / "ground_truth" / "spectra.csv").write_text("truth")
    (out / "ground_truth" / "mine.txt").write_text("x")
    err = _refused(capsys, *_demo(out))
    assert "ground_truth/mine.txt" in err
    assert (out / "ground_truth" / "spectra.csv").read_text() == "truth"
    assert not (out / "sample.tif").exists()


def test_demo_reruns_into_its_own_earlier_folder(capsys, tmp_path):
    out = tmp_path / "d"
    assert main([str(a) for a in _demo(out)]) == 0
    assert main([str(a) for a in _demo(out)]) == 0
    capsys.readouterr()
    assert (out / "sample.tif").exists() and (out / "pca" / "result.json").exists()
