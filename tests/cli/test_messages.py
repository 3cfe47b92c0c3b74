"""The command line's messages speak of its flags and its files, and say what is true.

Each case was found by running ``napari-unmix`` on bad input: the message named a
Python argument (``n_components``, ``spectral_axis``, ``X``), said something false
(negative label ids reported as "every pixel is 0"), or advised a flag the command
does not have (``demo --noise 0.05`` failed, telling the user to pass
``--negative clip``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_unmix.cli import main
from napari_unmix.core.endmembers import purest_pixels
from napari_unmix.core.synthetic import make_crs_sample
from napari_unmix.io import write_spectra_csv, write_stack_tiff


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-messages")
    sample = make_crs_sample(shape=(16, 12), n_channels=10, random_state=2)
    write_stack_tiff(d / "s.tif", sample.stack, axes="CYX",
                     spectral_values=sample.spectral_axis, spectral_unit="cm^-1")
    np.save(d / "zeros.npy", np.zeros((10, 16, 12), np.float32))
    write_spectra_csv(d / "alike.csv", sample.H[:3], sample.spectral_axis,
                      ["lipid", "water", "lipid"], "cm^-1")
    np.save(d / "neg.npy", sample.stack - 0.5)
    labels = np.zeros((16, 12), np.int32)
    labels[:4, :4] = 1
    labels[-4:, -4:] = -3
    labels[:4, -4:] = -1
    np.save(d / "negative_labels.npy", labels)
    np.save(d / "all_minus_one.npy", -np.ones((16, 12), np.int32))
    return d


def test_negative_label_ids_are_named_not_called_zero(files, tmp_path, cli_error):
    line = cli_error("run", files / "s.tif", "--mode", "seeded-nmf", "--labels",
                      files / "negative_labels.npy", "--out", tmp_path / "o")
    assert "negative label id(s) (-3, -1; 32 pixel(s))" in line
    assert "every pixel is 0" not in line
    line = cli_error("run", files / "s.tif", "--mode", "seeded-nmf", "--labels",
                      files / "all_minus_one.npy", "--out", tmp_path / "o")
    assert "(-1; 192 pixel(s))" in line and "every pixel is 0" not in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, said, unsaid", [
    (["s.tif", "--mode", "nmf", "-k", "11"],
     ["asks for -k 11", "at most 10", "Reduce -k"], ["n_components"]),
    (["s.tif", "--mode", "pca", "-k", "2", "--spectral-axis", "4"],
     ["--spectral-axis 4 is out of range"], ["spectral_axis="]),
    (["zeros.npy", "--mode", "nmf", "-k", "2"],
     ["The data is all zeros"], ["X is"]),
    (["neg.npy", "--mode", "nmf", "-k", "2"],
     ["neg.npy holds", "--negative clip"], ["X holds"]),
])
def test_run_errors_name_the_flags_not_the_arguments(files, tmp_path, args, said,
                                                     unsaid, cli_error):
    args = [files / a if a.endswith((".tif", ".npy")) else a for a in args]
    line = cli_error("run", *args, "--out", tmp_path / "o")
    for words in said:
        assert words in line
    for words in unsaid:
        assert words not in line


def test_suggest_with_too_many_components_names_the_flag(files, tmp_path, cli_error):
    line = cli_error("suggest", files / "s.tif", "-k", "50", "--out", tmp_path / "o")
    assert "-k 50 asks for 50 candidates" in line and "at most 10" in line
    assert "k=50" not in line


@pytest.mark.parametrize("k", [2.5, 0, -1, True])
def test_purest_pixels_refuses_a_k_that_is_not_a_count(k):
    X = np.random.default_rng(0).random((50, 6))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        purest_pixels(X, k)


def test_demo_at_a_high_noise_clips_and_says_so(capsys, tmp_path):
    code = main(["demo", "--out", str(tmp_path / "d"), "--size", "12", "--channels", "8",
                 "--noise", "0.2", "--max-iter", "50"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "negative value(s) at --noise 0.2" in err and "clip them to 0" in err
    params = json.loads((tmp_path / "d" / "nnls-active-set-numpy" / "result.json").read_text())
    assert '"negative": "clip"' in json.dumps(params)


def test_demo_refusing_negative_values_says_so_before_any_work(tmp_path, cli_error):
    line = cli_error("demo", "--out", tmp_path / "d", "--size", "12", "--channels", "8",
                      "--noise", "0.2", "--negative", "raise")
    assert "--negative raise refuses" in line and "--negative clip" in line
    assert not (tmp_path / "d").exists()


def test_spectra_with_two_columns_of_one_name_name_the_file_and_columns(files, tmp_path,
                                                                      cli_error):
    # before: "Component names must be unique; repeated: lipid." without the file
    line = cli_error("run", files / "s.tif", "--mode", "nnls", "--spectra",
                      files / "alike.csv", "--out", tmp_path / "o")
    assert "alike.csv: two of the chosen spectra have one name ('lipid' in column(s) 2, 4)" \
        in line


def test_a_capped_run_warns_in_flags(capsys, files, tmp_path):
    code = main(["run", str(files / "s.tif"), "--mode", "nmf", "-k", "2", "--max-iter", "1",
                 "--tol", "1e-9", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0, err
    line = next(ln for ln in err.splitlines() if "napari-unmix: warning:" in ln)
    assert "stopped at --max-iter 1 before meeting --tol 1e-09" in line
    assert "max_iter" not in line and "tol=" not in line


def test_cli_words_turn_option_values_into_flags():
    from napari_unmix.cli.console import cli_words

    assert cli_words("3 pixel(s) stopped at max_iter=20 before reaching tol=0.0001 (kept)") \
        == "3 pixel(s) stopped at --max-iter 20 before reaching --tol 0.0001 (kept)"
    assert cli_words("nmf asks for n_components=9, at most 8. Reduce n_components or") \
        == "nmf asks for -k 9, at most 8. Reduce -k or"
    assert cli_words("spectral_axis=-4 is out of range") == "--spectral-axis -4 is out of range"


@pytest.mark.parametrize("mode_args", [["--mode", "nmf", "-k", "2"], ["--mode", "pca", "-k", "2"]])
def test_a_zarr_stack_with_nan_is_refused_in_the_command_line_s_words(tmp_path,
                                                                     mode_args, cli_error):
    # the lazy path's words were the API's: "Exclude those pixels with a mask
    # (stack_to_matrix(..., mask=finite_mask(stack)))", which no flag does
    zarr = pytest.importorskip("zarr", reason="zarr is not installed (napari-unmix[distributed])")
    data = np.random.default_rng(0).random((6, 32, 32)).astype(np.float32)
    data[2, 5, 5] = np.nan
    arr = zarr.create_array(str(tmp_path / "c.zarr"), shape=data.shape, dtype=data.dtype,
                            chunks=(6, 16, 16))
    arr[:] = data
    line = cli_error("run", tmp_path / "c.zarr", *mode_args, "--out", tmp_path / "o")
    assert "the stack holds 1 NaN" in line and "does not drop pixels on its own" in line
    assert "finite_mask" not in line and "stack_to_matrix" not in line
