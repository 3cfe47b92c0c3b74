"""Shared fixtures and markers of the napari-unmix test suite.

Problems are small, deterministic and built from known factors, so that tests can
compare what a mode returns with the ground truth.  The fixtures build on each
other::

    spectral_axis ─┬─ separated_spectra ──┐
                   │                      ├─ low_rank ── noisy
                   │      abundances ─────┤
                   └─ overlapping_spectra ┴─ overlap

Every fixture returns fresh, writable arrays, so a test may modify what it got
without affecting another test.

``write_lsm`` writes a minimal Zeiss LSM file (tifffile reads LSM but cannot write
it): the bytes tifffile parses as one, with a ChannelWavelength block and voxel sizes.

Markers
-------
``requires_torch``
    Skip unless PyTorch imports (it is an optional dependency).  Use it on a test
    or on a ``pytest.param``.
``cuda`` (declared in pyproject.toml)
    Skip unless torch sees a CUDA GPU.

Parametrising fixtures
----------------------
A test that takes an argument ``nmf_key`` runs once per registered NNMF
implementation ``(solver, backend)`` of ``core.solvers.NMF_SOLVERS``; the torch
ones carry the ``requires_torch`` marker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from napari_unmix.core.device import cuda_available, torch_available

# torch's intra-op thread pool busy-waits: on a shared, loaded machine two threads
# make a 96 x 32 MU iteration ~100x slower (16 ms instead of 0.1 ms, measured).  The
# test problems are tiny, so torch runs single-threaded unless the caller chose
# otherwise.  Set before torch is imported (it is imported lazily by the core).
os.environ.setdefault("OMP_NUM_THREADS", "1")

# --------------------------------------------------------------------------- markers


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires_torch: needs PyTorch (skipped when it does not import)"
    )


def pytest_runtest_setup(item):
    if item.get_closest_marker("requires_torch") and not torch_available():
        pytest.skip("PyTorch is not installed (optional: pip install 'napari-unmix[torch]')")
    if item.get_closest_marker("cuda") and not cuda_available():
        pytest.skip("no CUDA GPU visible to torch")


def solver_params(table):
    """``pytest.param`` per registry key, torch ones marked ``requires_torch``."""
    return [
        pytest.param(key, id="/".join(key),
                     marks=[pytest.mark.requires_torch] if spec.needs_torch else [])
        for key, spec in table.items()
    ]


def pytest_generate_tests(metafunc):
    if "nmf_key" in metafunc.fixturenames:
        from napari_unmix.core.solvers import NMF_SOLVERS

        metafunc.parametrize("nmf_key", solver_params(NMF_SOLVERS))


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """Data ``X`` made from known factors: ``X = W H (+ noise)``.

    ``noise_floor`` is ``||X - W H||_F`` for the true factors, i.e. the error a
    perfect fit of the noise-free signal leaves (0 for exact data).
    """

    X: np.ndarray
    W: np.ndarray
    H: np.ndarray
    noise_floor: float = 0.0
    sigma: float = 0.0

    @property
    def n_pixels(self) -> int:
        return self.X.shape[0]

    @property
    def n_channels(self) -> int:
        return self.X.shape[1]

    @property
    def k(self) -> int:
        return self.H.shape[0]


N_CHANNELS = 32
N_PIXELS = 96  # an 8 x 12 image
K = 3
SPATIAL_SHAPE = (8, 12)


def gaussian(axis, center, width):
    """A unit-height Gaussian line on ``axis``."""
    return np.exp(-0.5 * ((axis - center) / width) ** 2)


@pytest.fixture
def spectral_axis():
    """Channel positions, ``N_CHANNELS`` values in [0, 1]."""
    return np.linspace(0.0, 1.0, N_CHANNELS)


@pytest.fixture
def separated_spectra(spectral_axis):
    """``(3, N_CHANNELS)`` well separated Gaussian lines on a small flat baseline.

    Strictly positive and well conditioned.
    """
    return np.stack([0.05 + gaussian(spectral_axis, c, 0.08) for c in (0.2, 0.5, 0.8)])


@pytest.fixture
def overlapping_spectra(spectral_axis):
    """``(3, N_CHANNELS)`` broad resonances 0.05 apart: the hard, ill-conditioned case."""
    return np.stack([gaussian(spectral_axis, c, 0.12) for c in (0.45, 0.5, 0.55)])


@pytest.fixture
def abundances():
    """``(N_PIXELS, 3)`` abundances, about half of the entries exactly zero.

    Every pixel keeps at least one component.
    """
    rng = np.random.default_rng(20240601)
    W = rng.uniform(0.2, 1.5, size=(N_PIXELS, K))
    zero = rng.random((N_PIXELS, K)) < 0.5
    zero[np.arange(N_PIXELS), rng.integers(0, K, N_PIXELS)] = False
    W[zero] = 0.0
    return W


@pytest.fixture
def low_rank(abundances, separated_spectra):
    """Exact rank-3 non-negative data ``X = W H`` in float64 (no noise)."""
    W, H = abundances, separated_spectra
    return Problem(X=W @ H, W=W, H=H)


@pytest.fixture
def noisy(low_rank):
    """``low_rank`` plus Gaussian noise (sigma = 1 % of the mean), clipped at 0."""
    sigma = 0.01 * float(low_rank.X.mean())
    noise = np.random.default_rng(7).standard_normal(low_rank.X.shape)
    X = np.clip(low_rank.X + sigma * noise, 0.0, None)
    floor = float(np.linalg.norm(X - low_rank.W @ low_rank.H))
    return Problem(X=X, W=low_rank.W, H=low_rank.H, noise_floor=floor, sigma=sigma)


@pytest.fixture
def overlap(abundances, overlapping_spectra):
    """Exact data ``X = W H`` from strongly overlapping Gaussian resonances."""
    W, H = abundances, overlapping_spectra
    return Problem(X=W @ H, W=W, H=H)


@pytest.fixture(scope="session")
def small_series():
    """``small_series(strategy)``: the NNMF z-series of a 3-plane 8 x 10 x 12-channel
    synthetic stack (``unmix_series``, k = 3, 30 iterations), one per strategy."""
    import warnings

    from napari_unmix.core import AnalysisConfig, unmix_series
    from napari_unmix.core.synthetic import make_crs_sample_4d

    made = {}

    def series(strategy):
        if strategy not in made:
            s = make_crs_sample_4d(n_planes=3, shape=(8, 10), n_channels=12, random_state=0)
            config = AnalysisConfig(mode="nmf", n_components=3, max_iter=30, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made[strategy] = unmix_series(s.stack, config, strategy=strategy)
        return made[strategy]

    return series


@dataclass(frozen=True)
class PlaneLabelledSeries:
    """A z-series sample and labels painted on each of its planes on its own."""

    sample: object  # SyntheticSample: stack (Z, C, Y, X), maps (k, Z, Y, X)
    labels: np.ndarray  # (Z, Y, X), ids 1..k, different on every plane


@pytest.fixture
def plane_labelled_series():
    """A synthetic z-series of 3 planes of 16 x 16 pixels and 12 channels, and labels
    painted on every plane on its own: on each plane, the 8 pixels where each true
    component makes up the largest fraction (so the labels differ between planes)."""
    from napari_unmix.core.synthetic import make_crs_sample_4d

    zs = make_crs_sample_4d(n_planes=3, shape=(16, 16), n_channels=12, random_state=0)
    k, n_planes = zs.n_components, zs.maps.shape[1]
    lab = np.zeros((n_planes, zs.maps[0, 0].size), dtype=np.uint16)
    for z in range(n_planes):
        frac = zs.maps[:, z].reshape(k, -1)
        frac = frac / frac.sum(axis=0, keepdims=True)
        for i in range(k):
            lab[z, np.argsort(-frac[i], kind="stable")[:8]] = i + 1
    lab = lab.reshape(zs.maps.shape[1:])
    assert not (lab == lab[:1]).all()
    return PlaneLabelledSeries(zs, lab)


@pytest.fixture
def kept_labels():
    """``kept_labels(folder, labels)`` asserts that a result folder keeps ``labels``
    exactly (ids, dtype and shape) as ``labels.tif``, named with its checksum in its
    ``config.json`` (``label_image``)."""
    import json

    import tifffile

    from napari_unmix.core.analysis import labels_sha256

    def check(folder, labels):
        back = tifffile.imread(Path(folder) / "labels.tif")
        assert back.dtype == labels.dtype and back.shape == labels.shape
        np.testing.assert_array_equal(back, labels)
        ref = json.loads((Path(folder) / "config.json").read_text())["label_image"]
        assert ref == {"path": "labels.tif", "sha256": labels_sha256(labels)}

    return check


# --------------------------------------------------------------------------- Zeiss LSM

#: The CZ_LSMINFO scan type of each image layout (tifffile's CZ_LSMINFO_SCANTYPE).
_LSM_SCAN_TYPES = {"CYX": 0, "ZCYX": 0, "TCYX": 3, "TZCYX": 6}


def _write_lsm(path, data, *, axes="CYX", wavelengths=None, voxel_size=(2e-7, 2e-7, 1e-6)):
    """Write ``data`` as a minimal Zeiss LSM file (tifffile can read LSM, not write it).

    A TIFF whose first page carries the CZ_LSMINFO tag (34412), laid out as
    tifffile's ``TIFF.CZ_LSMINFO`` says; every image page holds the channels of one
    plane as separate samples (planar) and is followed by a thumbnail page, as Zeiss
    writes them.  ``wavelengths`` (``(n_channels, 2)``, [start, end] in metres, as the LSM
    format stores them) become a ChannelWavelength block appended to the file, its
    offset patched into the tag; ``voxel_size`` is (X, Y, Z) in metres.

    Give 1 or at least 3 channels: with 2, tifffile (2026.3.3) takes the two
    BitsPerSample values, stored in the tag as TIFF says, for the offset at which old
    Zeiss writers put them, and fails to open the file.
    """
    import tifffile

    data = np.asarray(data)
    dims = dict(zip(axes, data.shape, strict=True))
    layout = np.dtype(tifffile.TIFF.CZ_LSMINFO)
    info = np.zeros((), layout)
    info["MagicNumber"], info["StructureSize"] = 67127628, layout.itemsize  # LSM 4+
    for letter, name in (("X", "X"), ("Y", "Y"), ("Z", "Z"), ("C", "Channels"),
                         ("T", "Time")):
        info[f"Dimension{name}"] = dims.get(letter, 1)
    info["VoxelSizeX"], info["VoxelSizeY"], info["VoxelSizeZ"] = voxel_size
    info["ScanType"] = _LSM_SCAN_TYPES[axes]
    info["DataType"] = 1 if data.dtype == np.uint8 else 2
    planes = data.reshape(-1, *data.shape[-3:])
    with tifffile.TiffWriter(path) as tw:
        for i, plane in enumerate(planes):
            tags = [(34412, "B", layout.itemsize, info.tobytes(), True)] if i == 0 else None
            one = plane.shape[0] == 1  # one channel: one sample per pixel
            tw.write(plane[0] if one else plane, photometric="minisblack",
                     planarconfig=None if one else "separate", metadata=None,
                     extratags=tags)
            tw.write(np.zeros((4, 4), np.uint8), subfiletype=1, photometric="minisblack",
                     metadata=None)
    if wavelengths is not None:
        with tifffile.TiffFile(path) as tf:
            start = tf.pages[0].tags[34412].valueoffset
        raw = bytearray(Path(path).read_bytes())
        block = np.asarray(wavelengths, "<f8")
        offset = len(raw) + (-len(raw)) % 8
        raw += bytes(offset - len(raw)) + np.int32(len(block)).tobytes() + block.tobytes()
        field = start + layout.fields["OffsetChannelWavelength"][1]
        raw[field:field + 4] = np.uint32(offset).tobytes()
        Path(path).write_bytes(bytes(raw))
    return Path(path)


@pytest.fixture
def write_lsm():
    """``write_lsm(path, data, *, axes="CYX", wavelengths=None, voxel_size=...)``: a
    minimal Zeiss LSM file (see :func:`_write_lsm`); returns its path."""
    return _write_lsm
