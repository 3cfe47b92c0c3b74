"""``napari-unmix run`` on zarr / OME-Zarr inputs, ``--out-format ome-zarr``, ``--scheduler``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unmix.cli import main
from napari_unmix.cli import scheduler as sched
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import open_stack, read_result_bundle, write_spectra_csv

zarr = pytest.importorskip("zarr", reason="zarr is not installed (napari-unmix[distributed])")
pytest.importorskip("ome_zarr", reason="ome-zarr is not installed")

from napari_unmix.io.ome_zarr_out import write_stack_ome_zarr  # noqa: E402

SIZES = ((0.5, 0.25), ("um", "um"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    sample = make_crs_sample(shape=(40, 36), n_channels=12, random_state=3)
    d = tmp_path_factory.mktemp("big-inputs")
    write_stack_ome_zarr(d / "cube.ome.zarr", sample.stack, spectral_values=sample.spectral_axis,
                         spectral_unit="cm^-1", pixel_size=SIZES, chunks=(12, 16, 16))
    write_spectra_csv(d / "refs.csv", sample.H, sample.spectral_axis, sample.component_names,
                      "cm^-1")
    return d, sample


def run(capsys, *args):
    code = main(list(map(str, args)))
    out, err = capsys.readouterr()
    return code, out, err


def test_ome_zarr_in_and_out_keeps_names_colours_and_pixel_sizes(inputs, tmp_path, capsys):
    d, sample = inputs
    out = tmp_path / "maps.ome.zarr"
    code, stdout, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                            d / "refs.csv", "--out-format", "ome-zarr", "--out", out)
    assert code == 0, err
    assert "opened lazily (OME-Zarr" in err and "OME-Zarr maps (the folder itself)" in stdout
    ome = json.loads((out / "zarr.json").read_text())["attributes"]["ome"]
    assert [c["label"] for c in ome["omero"]["channels"]] == list(sample.component_names)
    scale = ome["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [1.0, 0.5, 0.25]
    info = json.loads((out / "result.json").read_text())
    assert info["maps_format"] == "ome-zarr" and info["files"]["maps"] == "."
    bundle = read_result_bundle(out)  # the output set is also a result folder
    tiff_out = tmp_path / "tiff"
    code, _, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                       d / "refs.csv", "--out", tiff_out)
    assert code == 0, err
    same = read_result_bundle(tiff_out)
    np.testing.assert_array_equal(bundle.result.W, same.result.W)
    level0 = np.asarray(zarr.open_array(str(out / "s0"), mode="r")[:])
    np.testing.assert_array_equal(level0, same.maps())
    # the TIFF maps carry the pixel sizes too
    maps = open_stack(tiff_out / "maps.tif")
    assert maps.scale[-2:] == (0.5, 0.25) and maps.units[-2:] == ("um", "um")
    with tifffile.TiffFile(tiff_out / "maps.tif") as tf:
        assert tf.imagej_metadata["unit"] == "um"
    # the OME-Zarr output set is replaced whole by a rerun
    code, _, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                       d / "refs.csv", "--out-format", "ome-zarr", "--out", out)
    assert code == 0, err


def test_scheduler_local_gives_the_same_numbers(inputs, tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed", reason="distributed is not installed")
    monkeypatch.setitem(sched.LOCAL_OPTIONS, "processes", False)  # in-process workers
    monkeypatch.setattr(sched, "LOCAL_WORKERS", 2)
    d, _ = inputs
    code, _, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                       d / "refs.csv", "--scheduler", "local", "--out", tmp_path / "a")
    assert code == 0, err
    assert "computing on a local cluster of" in err
    code, _, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                       d / "refs.csv", "--out", tmp_path / "b")
    assert code == 0, err
    np.testing.assert_array_equal(read_result_bundle(tmp_path / "a").result.W,
                                  read_result_bundle(tmp_path / "b").result.W)


def test_the_done_line_says_where_the_blocks_ran(inputs, tmp_path, capsys, monkeypatch):
    """It said ``on cpu`` (the device) only; a stack read into memory was computed in this
    process while a note said it was "computing on a local cluster"."""
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    monkeypatch.setitem(sched.LOCAL_OPTIONS, "processes", False)  # in-process workers
    monkeypatch.setattr(sched, "LOCAL_WORKERS", 2)
    d, sample = inputs
    code, out, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                         d / "refs.csv", "--scheduler", "local", "--out", tmp_path / "a")
    assert code == 0, err
    done = next(line for line in out.splitlines() if line.startswith("done: "))
    assert "block(s) on a local cluster of 2 worker(s)" in done, done
    code, out, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                         d / "refs.csv", "--out", tmp_path / "b")
    assert code == 0, err
    assert "block(s) on threads in this process" in out
    # a TIFF is read into memory: no cluster is started, and the note says so
    tif = tmp_path / "cube.tif"
    tifffile.imwrite(tif, sample.stack)

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started for a stack in memory")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    code, out, err = run(capsys, "run", tif, "--mode", "nnls", "--spectra", d / "refs.csv",
                         "--spectral-axis", "0", "--scheduler", "local", "--out", tmp_path / "c")
    assert code == 0, err
    assert "--scheduler local is not used: cube.tif is read into memory" in err
    assert "computing on" not in err and "block(s)" not in out


def test_scheduler_unreachable_or_missing_is_one_line_naming_the_flag(inputs, tmp_path,
                                                                     capsys, monkeypatch):
    distributed = pytest.importorskip("distributed", reason="distributed is not installed")
    d, _ = inputs

    def refuse(*args, **kwargs):
        raise OSError("Timed out trying to connect to tcp://10.0.0.9:8786 after 10 s")

    monkeypatch.setattr(distributed, "Client", refuse)
    args = ["run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra", d / "refs.csv",
            "--out", tmp_path / "x"]
    code, _, err = run(capsys, *args, "--scheduler", "tcp://10.0.0.9:8786")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("napari-unmix: error: --scheduler tcp://10.0.0.9:8786: cannot reach")
    monkeypatch.setitem(sys.modules, "distributed", None)  # not installed
    code, _, err = run(capsys, *args, "--scheduler", "local")
    assert code == 2 and "--scheduler needs dask.distributed" in err
    assert "napari-unmix[distributed]" in err
    assert not (tmp_path / "x").exists()


def test_a_zarr_folder_is_read_not_refused_as_without_tif_files(tmp_path, capsys):
    data = np.random.default_rng(0).random((6, 16, 16), dtype=np.float32)
    arr = zarr.create_array(str(tmp_path / "plain.zarr"), shape=data.shape, dtype="f4",
                            chunks=(6, 8, 8), dimension_names=("c", "y", "x"))
    arr[:] = data
    code, _, err = run(capsys, "run", tmp_path / "plain.zarr", "--mode", "pca", "-k", "2",
                       "--out", tmp_path / "pca")
    assert code == 0, err
    assert "no .tif" not in err
    (tmp_path / "broken.zarr").mkdir()
    code, _, err = run(capsys, "run", tmp_path / "broken.zarr", "--mode", "pca", "-k", "2",
                       "--out", tmp_path / "p2")
    assert code == 2 and "zarr" in err and "no .tif" not in err


@pytest.fixture
def remote_scheduler(tmp_path):
    """A dask scheduler and one worker in processes of their own, as on a cluster."""
    import subprocess
    import time

    pytest.importorskip("distributed", reason="distributed is not installed")
    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.fail("the dask scheduler did not start within 60 s")
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--nworkers", "1", "--no-dashboard", "--local-directory", str(tmp_path / "w")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_scheduler_address_runs_on_a_remote_worker_process(inputs, tmp_path, capsys,
                                                           remote_scheduler):
    import distributed

    d, _ = inputs
    with distributed.Client(remote_scheduler, timeout="30s") as client:
        client.wait_for_workers(1, timeout=60)
    code, _, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                       d / "refs.csv", "--scheduler", remote_scheduler, "--out",
                       tmp_path / "remote")
    assert code == 0, err
    assert f"computing on the scheduler at {remote_scheduler}" in err
    with distributed.Client(remote_scheduler, timeout="30s") as client:
        prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(
            dask_scheduler.task_prefixes))
    assert "nnls-block" in prefixes          # the blocks were solved by the worker process
    code, _, err = run(capsys, "run", d / "cube.ome.zarr", "--mode", "nnls", "--spectra",
                       d / "refs.csv", "--out", tmp_path / "here")
    assert code == 0, err
    np.testing.assert_array_equal(read_result_bundle(tmp_path / "remote").result.W,
                                  read_result_bundle(tmp_path / "here").result.W)


def test_out_inside_the_input_store_suggests_a_folder_outside_it(inputs, capsys):
    # --out cube.ome.zarr/maps.ome.zarr was refused with "e.g. --out
    # .../cube.ome.zarr/maps.ome.zarr-unmixed": a folder inside the input again
    import re

    from napari_unmix.cli.outputs import check_out

    d, _ = inputs
    cube = d / "cube.ome.zarr"
    code, _, err = run(capsys, "run", cube, "--mode", "pca", "-k", "2",
                       "--out", cube / "maps.ome.zarr")
    assert code == 2 and "inside the input stack" in err
    suggested = Path(re.search(r"e\.g\. --out (\S+?)\.?$", err.strip()).group(1))
    assert cube.resolve() not in suggested.resolve().parents
    assert check_out(suggested, [("the input stack", cube)]) == suggested


@pytest.mark.parametrize(("args", "flags"), [
    (["--mode", "nmf", "-k", "3", "--solver", "mu"], ["--solver mu", "--solver auto"]),
    (["--mode", "nmf", "-k", "3", "--backend", "torch"], ["--backend torch", "--backend auto"]),
    (["--mode", "nmf", "-k", "3", "--abundance", "sum-to-one"],
     ["--abundance sum-to-one", "--abundance free"]),
    (["--mode", "nmf", "-k", "3", "--device", "cuda"], ["--device cpu"]),
    (["--mode", "nnls", "--spectra", "refs.csv", "--device", "cuda"], ["--device cpu"]),
])
def test_options_a_zarr_stack_cannot_take_are_refused_in_the_cli_s_words(inputs, tmp_path,
                                                                          capsys, args, flags):
    # the messages said "(np.asarray it)", "pass device='cpu'", "solver='mu'"
    d, _ = inputs
    args = [str(d / a) if a == "refs.csv" else a for a in args]
    code, _, err = run(capsys, "run", d / "cube.ome.zarr", *args, "--out", tmp_path / "o")
    assert code != 0
    assert "np.asarray" not in err and "='" not in err and "pass " not in err, err
    assert all(f in err for f in flags), err
    assert "TIFF or .npy file" in err, err


def test_out_that_is_another_zarr_store_is_called_a_zarr_store(inputs, tmp_path, capsys):
    # it was refused as "files of an incomplete napari-unmix result"
    d, _ = inputs
    np.save(tmp_path / "cube.npy", np.ones((12, 4, 4), np.float32))
    code, _, err = run(capsys, "run", tmp_path / "cube.npy", "--mode", "nmf", "-k", "2",
                       "--out", d / "cube.ome.zarr")
    assert code != 0
    assert "a zarr store that is no napari-unmix result" in err and "incomplete" not in err
    assert (d / "cube.ome.zarr").is_dir()  # untouched
