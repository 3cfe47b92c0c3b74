"""Spectra files, resampling onto the stack's axis, and Gaussian resonance models."""

from pathlib import Path

import numpy as np
import pytest

from napari_unmix.core.components import Spectrum
from napari_unmix.core.spectra import (
    FWHM_PER_SIGMA,
    gaussian_model,
    parse_spectra,
    read_spectra,
    resample_spectrum,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CARBS = DATA / "supure_raman_emulsion" / "carbs_mixtures.npz"


@pytest.mark.parametrize("sep", [",", "\t", " ", "  \t ", ";"])
def test_parse_separators_and_header(sep):
    lines = ["wavenumber{0}lipid{0}protein", "100{0}1.5{0}0", "200{0}2{0}0.25", "300{0}0{0}1e-3"]
    table = parse_spectra("\n".join(line.format(sep) for line in lines))
    assert table.axis_name == "wavenumber"
    assert table.names == ["lipid", "protein"]
    assert np.array_equal(table.axis, [100.0, 200.0, 300.0])
    assert np.array_equal(table.values, [[1.5, 2.0, 0.0], [0.0, 0.25, 1e-3]])


def test_parse_without_header_and_with_comments():
    text = "# exported spectra\n3000 1 2\n2900 3 4  # last\n\n2800 5 6\n"
    table = parse_spectra(text)
    assert table.names == ["spectrum 1", "spectrum 2"]
    assert table.descending
    assert np.array_equal(table.values, [[1, 3, 5], [2, 4, 6]])


@pytest.mark.parametrize("bad, where", [
    ("1,2\n2,nan\n3,4", "line 2, column 2"),
    ("x,y\n1,2\n2,abc\n3,4", "line 3, column 2"),
    ("1,2\n2,inf\n", "line 2, column 2"),
])
def test_parse_names_the_bad_row(bad, where):
    with pytest.raises(ValueError, match=where):
        parse_spectra(bad, source="spectra.csv")


def test_parse_structural_errors():
    with pytest.raises(ValueError, match="line 3 has 2 values"):
        parse_spectra("1,2,3\n2,3,4\n3,4\n")
    with pytest.raises(ValueError, match="strictly increase or strictly decrease"):
        parse_spectra("1,2\n3,4\n2,5\n")
    with pytest.raises(ValueError, match="no data"):
        parse_spectra("# nothing\n\n")
    with pytest.raises(ValueError, match="at least one spectrum column"):
        parse_spectra("1\n2\n")


def test_read_spectra_file_and_spectrum_from_file(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("nm,dyeA,dyeB\n500,0.1,1\n510,0.5,0.5\n520,1,0.1\n")
    table = read_spectra(path)
    assert table.column_index("dyeB") == 1
    with pytest.raises(ValueError, match="No spectrum column 'dyeC'"):
        table.column_index("dyeC")
    with pytest.raises(ValueError, match="out of range"):
        table.column_index(2)
    spec = Spectrum.from_file(path, "dyeB")
    assert np.array_equal(spec.values, [1.0, 0.5, 0.1])
    assert np.array_equal(spec.axis, [500.0, 510.0, 520.0])
    assert spec.label.endswith("ref.csv:dyeB")


def test_resample_linear_spectrum_is_exact_in_both_directions():
    src_axis = np.linspace(1000.0, 2000.0, 51)
    values = 3.0 + 0.002 * src_axis  # linear: interpolation is exact
    target = np.linspace(1100.0, 1900.0, 37)
    expected = 3.0 + 0.002 * target
    for a, v in ((src_axis, values), (src_axis[::-1], values[::-1])):
        for t, e in ((target, expected), (target[::-1], expected[::-1])):
            out, info = resample_spectrum(v, a, t)
            np.testing.assert_allclose(out, e, rtol=1e-12)
            assert info["n_outside"] == 0


def test_resample_partial_overlap_and_no_overlap():
    axis = np.array([10.0, 20.0, 30.0])
    values = np.array([1.0, 2.0, 3.0])
    target = np.array([0.0, 5.0, 15.0, 25.0, 40.0])
    out, info = resample_spectrum(values, axis, target)
    assert np.array_equal(out, [0.0, 0.0, 1.5, 2.5, 0.0])
    assert info["n_outside"] == 3
    edge, _ = resample_spectrum(values, axis, target, outside="edge")
    assert np.array_equal(edge, [1.0, 1.0, 1.5, 2.5, 3.0])
    with pytest.raises(ValueError, match="3 channel"):
        resample_spectrum(values, axis, target, outside="error")
    with pytest.raises(ValueError, match=r"covers 10 to 30 .* stack covers 400 to 700"):
        resample_spectrum(values, axis, np.linspace(400, 700, 5))


def test_gaussian_model_fwhm_and_sigma():
    x = np.linspace(-50, 50, 10001)
    g = gaussian_model(x, [(5.0, 20.0, 2.0)])
    assert g.max() == pytest.approx(2.0, abs=1e-6)
    # half maximum exactly FWHM/2 from the centre
    assert gaussian_model(np.array([15.0, -5.0]), [(5.0, 20.0, 2.0)]) == pytest.approx([1.0, 1.0])
    s = gaussian_model(np.array([5.0 + 3.0]), [(5.0, 3.0, 1.0)], width_kind="sigma")
    assert s[0] == pytest.approx(np.exp(-0.5))
    assert FWHM_PER_SIGMA == pytest.approx(2.3548200450309493)
    two = gaussian_model(x, [(-20, 5, 1), (20, 5, 0.5)], baseline=0.25)
    assert two[np.argmin(abs(x + 20))] == pytest.approx(1.25)
    assert two[np.argmin(abs(x - 20))] == pytest.approx(0.75)
    assert two[np.argmin(abs(x))] == pytest.approx(0.25, abs=1e-6)


@pytest.mark.realdata
def test_carbohydrate_spectra_descending_axis_resampled(tmp_path):
    if not CARBS.exists():
        pytest.skip(f"real data not found at {CARBS} (see shared/data/README.md)")
    data = np.load(CARBS)
    wn, S = data["wavenumber_cm1"], data["S"]
    assert wn[0] > wn[-1], "the file is expected to hold a descending axis"
    path = tmp_path / "carbs.csv"
    names = [str(n) for n in data["component_names"]]
    with open(path, "w") as fh:
        fh.write("wavenumber," + ",".join(names) + "\n")
        for w, row in zip(wn, S, strict=True):
            fh.write(f"{float(w)!r}," + ",".join(repr(float(v)) for v in row) + "\n")
    table = read_spectra(path)
    assert table.descending and table.names == names
    assert np.array_equal(table.values, S.T)
    target = np.linspace(300.0, 1500.0, 241)  # ascending stack axis, 5 cm^-1 steps
    out = table.resampled(target)
    for j in range(S.shape[1]):
        expected = np.interp(target, wn[::-1], S[::-1, j])
        np.testing.assert_allclose(out[j], expected, rtol=0, atol=1e-12)
        # the strongest band stays where it was (within one target step)
        band = wn[np.argmax(np.where((wn >= 300) & (wn <= 1500), S[:, j], -np.inf))]
        assert abs(target[np.argmax(out[j])] - band) <= 5.0


def test_components_from_spectra_file(tmp_path):
    from napari_unmix.core.components import components_from_spectra

    path = tmp_path / "ref.txt"
    path.write_text("cm-1\tlipid\tprotein\n3000\t0\t1\n2900\t1\t0.5\n2800\t0.5\t0\n")
    comps = components_from_spectra(path, locked=True, colors=["red", "blue"])
    assert [c.name for c in comps] == ["lipid", "protein"]
    assert [c.color for c in comps] == ["red", "blue"] and all(c.locked for c in comps)
    assert np.array_equal(comps[1].h_source.values, [1.0, 0.5, 0.0])
    assert np.array_equal(comps[1].h_source.axis, [3000.0, 2900.0, 2800.0])
    only = components_from_spectra(path, columns=["protein"])
    assert [c.name for c in only] == ["protein"] and not only[0].locked
    with pytest.raises(ValueError, match="1 colours for 2 spectra"):
        components_from_spectra(path, colors=["red"])


def test_components_from_spectra_refuses_two_spectra_of_one_name(tmp_path):
    # before: run_analysis said "Component names must be unique; repeated: lipid", no file
    from napari_unmix.core.components import components_from_spectra

    path = tmp_path / "ref.txt"
    path.write_text("cm-1\tlipid\tprotein\tlipid\n3000\t0\t1\t2\n2900\t1\t0.5\t2\n")
    with pytest.raises(ValueError, match=r"ref\.txt: two of the chosen spectra have one name "
                       r"\('lipid' in column\(s\) 2, 4\)"):
        components_from_spectra(path)
    with pytest.raises(ValueError, match=r"'protein' in column\(s\) 3\)"):
        components_from_spectra(path, columns=[1, "protein"])
    assert [c.name for c in components_from_spectra(path, columns=[0, 1])] == ["lipid",
                                                                              "protein"]


def test_resampling_onto_an_axis_with_repeated_positions_names_them():
    # before: "A spectral axis has repeated values; each position must be unique", with
    # neither the axis (the stack's, not the spectrum's) nor the channels named
    from napari_unmix.core.spectra import resample_spectrum

    stack_axis = [500.0, 520.0, 540.0, 500.0, 520.0, 540.0]  # one band under two lasers
    with pytest.raises(ValueError, match=r"^ref cannot be resampled onto the stack's spectral "
                       r"axis, which repeats positions \(500 at channels 0, 3; 520 at "
                       r"channels 1, 4; 540 at channels 2, 5\)"):
        resample_spectrum([0.0, 1.0, 0.0], [480.0, 520.0, 560.0], stack_axis, name="ref")
    with pytest.raises(ValueError, match=r"^The spectral axis of ref repeats positions "
                       r"\(520 at points 1, 2\)"):
        resample_spectrum([0.0, 1.0, 0.0], [480.0, 520.0, 520.0], [500.0, 540.0], name="ref")
    out, _ = resample_spectrum([0.0, 1.0, 0.0], [480.0, 520.0, 560.0], [540.0, 500.0])
    np.testing.assert_allclose(out, [0.5, 0.5])  # descending, distinct: fine


@pytest.mark.parametrize("peaks, words", [
    ([(2900.0, 0.0, 1.0)], "width must be > 0"),  # before: NaN everywhere, two warnings
    ([(2900.0, -20.0, 1.0)], "width must be > 0"),
    ([(2900.0, 20.0, -1.0)], "amplitude >= 0"),  # before: a negative "spectrum"
    ([(np.nan, 20.0, 1.0)], "all finite"),  # before: NaN everywhere
    ([], "at least one peak"),  # before: the baseline alone
    ([(2900.0, 20.0)], r"\(center, width, amplitude\)"),  # before: "not enough values"
    ([{"center": 2900.0}], "three numbers"),
])
def test_gaussian_model_refuses_what_the_gaussian_source_refuses(peaks, words):
    from napari_unmix.core.components import Gaussian
    from napari_unmix.core.spectra import gaussian_model

    axis = np.linspace(2800.0, 3100.0, 31)
    with pytest.raises(ValueError, match=words):
        gaussian_model(axis, peaks)
    with pytest.raises(ValueError, match=words):
        Gaussian(peaks=peaks)
    with pytest.raises(ValueError, match="baseline must be finite and >= 0"):
        gaussian_model(axis, [(2900.0, 20.0, 1.0)], baseline=-1.0)


def test_components_from_spectra_given_an_array_says_what_it_reads():
    # it raised pathlib's "expected str, bytes or os.PathLike object, not ndarray"
    from napari_unmix.core.components import components_from_spectra

    with pytest.raises(TypeError, match=r"reads a spectra file: give its path, got ndarray"):
        components_from_spectra(np.ones((2, 5)))
