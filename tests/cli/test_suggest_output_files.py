"""The output files of ``suggest`` (``--seeds``, ``--save-config``) and ``suggest-k``
(``--json``): checked before the computation, written atomically, a failed write
named by its flag and file.

Found by attacking main: a missing folder was found only after the computation, and
a full disk (ENOSPC) or a refused permission gave an error naming neither the flag
nor the file, after truncating the file that was there.
"""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from napari_unmix.core.synthetic import make_crs_sample

_FLAGS = {"--json": ("suggest-k",), "--seeds": ("suggest", "-k", "2", "--no-run"),
          "--save-config": ("suggest", "-k", "2", "--no-run")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    path = tmp_path_factory.mktemp("suggest-files") / "s.npy"
    np.save(path, make_crs_sample(shape=(12, 12), n_channels=10, random_state=1).stack)
    return path


def _args(stack, flag, path):
    command, *rest = _FLAGS[flag]
    return (command, stack, "--spectral-axis", 0, "--k-max", 3, *rest, flag, path)


@pytest.mark.parametrize("flag", list(_FLAGS))
def test_a_missing_folder_is_refused_before_the_computation(stack, tmp_path, cli_error,
                                                            monkeypatch, flag):
    import napari_unmix.cli.suggest as suggest

    def never(*args, **kwargs):
        raise AssertionError("computed before the output folder was checked")

    monkeypatch.setattr(suggest, "suggest_n_components", never)
    monkeypatch.setattr(suggest, "suggest_analysis", never)
    name = "seeds.tif" if flag == "--seeds" else "out.json"
    target = tmp_path / "missing" / name
    line = cli_error(*_args(stack, flag, target))
    assert f"{flag} {target}" in line and "does not exist" in line
    line = cli_error(*_args(stack, flag, tmp_path))
    assert f"{flag} {tmp_path} is a folder" in line


@pytest.mark.parametrize("flag", list(_FLAGS))
def test_a_failed_write_names_the_flag_and_file_and_keeps_the_old_file(stack, tmp_path,
                                                                       cli_error,
                                                                       monkeypatch, flag):
    import napari_unmix.core._files as files

    target = tmp_path / ("seeds.npy" if flag == "--seeds" else "out.json")
    target.write_bytes(b"the previous file")

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "replace", full)
    line = cli_error(*_args(stack, flag, target))
    assert f"cannot write {flag} {target}" in line and os.strerror(errno.ENOSPC) in line
    assert target.read_bytes() == b"the previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary file
