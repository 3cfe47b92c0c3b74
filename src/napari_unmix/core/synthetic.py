"""A synthetic coherent-Raman (CRS) sample with known ground truth.

The sample imitates a hyperspectral SRS (or phase-retrieved CARS) stack of a few
cells in aqueous medium, recorded over the C-H / O-H stretch region
(2800-3100 cm^-1).  Four components add linearly, ``stack = W H + noise``:

``lipid``
    CH2 symmetric (2850 cm^-1) and antisymmetric (2885 cm^-1) stretches, a weak
    CH3 band near 2930 cm^-1 and a small =C-H band near 3010 cm^-1.  Found in
    lipid droplets (bright, small, mostly in the cytoplasm) and, weakly, spread
    over the cytoplasm (membranes).
``protein``
    CH3 stretch near 2935 cm^-1 with shoulders at 2875 and 2970 cm^-1: it overlaps
    the lipid bands on purpose.  Moderate in the cytoplasm, highest in a
    nucleus-like region of every cell.
``water``
    The low-wavenumber flank of the broad O-H band (centred near 3250 cm^-1),
    rising towards 3100 cm^-1.  Everywhere, displaced by cells and droplets.
``background``
    A flat, non-resonant offset.  Everywhere, with a smooth illumination fall-off
    and slightly stronger in cells.

Every spectrum (row of ``H``) has unit maximum on the sampled axis, so ``W`` holds
the contribution of each component in the units of the stack.  All abundances
are non-negative.  The noise is additive, Gaussian and homoscedastic; with the
default level the stack stays positive, but for ``noise`` above about 0.05 some
values dip below zero (as background-subtracted data does); they are kept, not
clipped, so that ``stack == W H + noise`` holds exactly (up to float32 rounding).

Everything is drawn from one ``numpy.random.Generator`` seeded by
``random_state``: the same arguments always give the same sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .colors import DEFAULT_COLORS

__all__ = ["COMPONENT_NAMES", "SyntheticSample", "crs_spectra", "make_crs_sample",
           "make_crs_sample_4d"]

#: Names of the ground-truth components, in the order of ``W`` columns / ``H`` rows.
COMPONENT_NAMES = ("lipid", "protein", "water", "background")

#: Display colours of the components: the first four of the default palette.
_COLORS = tuple(DEFAULT_COLORS[:4])

#: Default wavenumber range in cm^-1.
WAVENUMBER_RANGE = (2800.0, 3100.0)


@dataclass(frozen=True, eq=False)
class SyntheticSample:
    """A synthetic hyperspectral stack and the truth it was built from.

    Attributes
    ----------
    stack : ndarray of float32, shape (C, Y, X) or (Z, C, Y, X)
        The noisy stack.  The spectral axis is ``spectral_axis_index``.
    W : ndarray of float64, shape (n_pixels, k)
        True abundances, pixels in the C order of ``stack_to_matrix(stack,
        spectral_axis_index)`` (a view of ``maps``).
    H : ndarray of float64, shape (k, C)
        True spectra, each with unit maximum.
    maps : ndarray of float64, shape (k, Y, X) or (k, Z, Y, X)
        ``W`` as images.
    spectral_axis : ndarray of float64, shape (C,)
        Wavenumber of every channel.
    spectral_unit : str
        ``"cm^-1"``.
    component_names : tuple of str
    colors : tuple of str
        One hex colour per component.
    noise : float
        The requested noise level (standard deviation relative to the maximum of
        the noise-free stack).
    noise_floor : float
        ``||noise||_F / ||stack||_F``: the relative reconstruction error that the
        true ``W`` and ``H`` reach on this stack.  A fit with a much lower
        relative error is fitting noise.
    random_state : int
        Seed the sample was drawn from.
    spectral_axis_index : int
        Position of the spectral axis in ``stack`` (0 for 3-D, 1 for 4-D).
    """

    stack: np.ndarray
    W: np.ndarray
    H: np.ndarray
    maps: np.ndarray
    spectral_axis: np.ndarray
    spectral_unit: str
    component_names: tuple
    colors: tuple
    noise: float
    noise_floor: float
    random_state: int
    spectral_axis_index: int = 0

    @property
    def n_components(self) -> int:
        return int(self.H.shape[0])

    @property
    def spatial_shape(self) -> tuple:
        return tuple(self.maps.shape[1:])

    def clean(self) -> np.ndarray:
        """The noise-free stack ``W H`` (float64, same layout as ``stack``)."""
        k, c = self.H.shape
        spectra = (self.W @ self.H).reshape((*self.spatial_shape, c))
        return np.moveaxis(spectra, -1, self.spectral_axis_index)


# -- spectra ------------------------------------------------------------------------

def _lorentz(nu, centre, hwhm):
    return hwhm**2 / ((nu - centre) ** 2 + hwhm**2)


def crs_spectra(wavenumbers) -> np.ndarray:
    """The four ground-truth spectra sampled at ``wavenumbers`` (cm^-1).

    Returns
    -------
    H : ndarray, shape (4, len(wavenumbers))
        Rows in the order of :data:`COMPONENT_NAMES`, each scaled to unit maximum
        over the given wavenumbers.
    """
    nu = np.asarray(wavenumbers, dtype=np.float64)
    lipid = (_lorentz(nu, 2850.0, 10.0) + 0.75 * _lorentz(nu, 2885.0, 12.0)
             + 0.3 * _lorentz(nu, 2930.0, 18.0) + 0.1 * _lorentz(nu, 3010.0, 8.0))
    protein = (_lorentz(nu, 2935.0, 20.0) + 0.35 * _lorentz(nu, 2875.0, 15.0)
               + 0.25 * _lorentz(nu, 2970.0, 12.0))
    water = np.exp(-0.5 * ((nu - 3250.0) / 150.0) ** 2)
    background = np.ones_like(nu)
    H = np.stack([lipid, protein, water, background])
    return H / H.max(axis=1, keepdims=True)


# -- spatial scene ------------------------------------------------------------------

def _soft_inside(r, width=0.08):
    """Smooth step: ~1 for normalised radius r < 1, ~0 outside."""
    return 0.5 * (1.0 - np.tanh((r - 1.0) / width))


def _ellipse_radius(yy, xx, cy, cx, ay, ax, theta):
    c, s = np.cos(theta), np.sin(theta)
    dy, dx = yy - cy, xx - cx
    u = (c * dx + s * dy) / ax
    v = (-s * dx + c * dy) / ay
    return np.sqrt(u * u + v * v)


def _smooth_field(rng, shape, sigma):
    from scipy.ndimage import gaussian_filter  # deferred: scipy.ndimage is slow to import

    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / max(f.std(), 1e-12)


def _draw_scene(rng, shape):
    """Draw the cells, nuclei and droplets of one scene (plane-independent)."""
    ny, nx = shape
    s = min(ny, nx) / 128.0
    n_cells = max(1, int(round(3 * ny * nx / 128.0**2)))
    cells = []
    for _ in range(n_cells):
        for _attempt in range(200):
            ay, ax = rng.uniform(18, 28, size=2) * s
            cy, cx = rng.uniform(0.22, 0.78) * ny, rng.uniform(0.22, 0.78) * nx
            ok = all(np.hypot(cy - c["cy"], cx - c["cx"]) > 0.85 * (max(ay, ax) + c["a"])
                     for c in cells)
            if ok:
                break
        cell = {"cy": cy, "cx": cx, "ay": ay, "ax": ax, "a": max(ay, ax),
                "theta": rng.uniform(0, np.pi), "cz": rng.uniform(0.8, 1.2)}
        # nucleus: smaller, off-centre, inside the cell
        off = rng.uniform(-0.25, 0.25, size=2)
        cell["nucleus"] = {"cy": cy + off[0] * ay, "cx": cx + off[1] * ax,
                           "ay": ay * rng.uniform(0.38, 0.5), "ax": ax * rng.uniform(0.38, 0.5),
                           "theta": rng.uniform(0, np.pi), "cz": cell["cz"] * 0.6}
        # lipid droplets: in the cytoplasm, at angles away from the nucleus centre
        n_drop = int(rng.integers(6, 13))
        drops = []
        for _ in range(n_drop):
            ang = rng.uniform(0, 2 * np.pi)
            rad = rng.uniform(0.55, 0.85)
            drops.append({
                "cy": cy + rad * ay * np.sin(ang), "cx": cx + rad * ax * np.cos(ang),
                "sigma": max(1.0, rng.uniform(1.2, 2.6) * s),
                "amp": rng.uniform(0.7, 1.4), "z": rng.uniform(-0.6, 0.6),
            })
        cell["droplets"] = drops
        cells.append(cell)
    # a few droplets floating in the medium
    free = [{"cy": rng.uniform(0.05, 0.95) * ny, "cx": rng.uniform(0.05, 0.95) * nx,
             "sigma": max(1.0, rng.uniform(1.5, 3.0) * s), "amp": rng.uniform(0.5, 1.0),
             "z": rng.uniform(-0.6, 0.6)}
            for _ in range(max(1, int(round(2 * ny * nx / 128.0**2))))]
    textures = (_smooth_field(rng, shape, 4.0 * s + 1.0), _smooth_field(rng, shape, 4.0 * s + 1.0))
    illum_centre = (rng.uniform(0.3, 0.7) * ny, rng.uniform(0.3, 0.7) * nx)
    drift = rng.uniform(-0.04, 0.04, size=2) * np.array([ny, nx])
    return {"cells": cells, "free": free, "textures": textures,
            "illum_centre": illum_centre, "drift": drift, "s": s}


def _add_blob(img, yy, xx, d, amp, sigma):
    img += amp * np.exp(-0.5 * ((yy - d["cy"]) ** 2 + (xx - d["cx"]) ** 2) / sigma**2)


def _render(scene, shape, z=0.0):
    """Abundance maps (4, Y, X) of the scene at normalised depth ``z`` in [-1, 1]."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    # cells drift slowly with z (or time), like a slow sample motion
    yy = yy - z * scene["drift"][0]
    xx = xx - z * scene["drift"][1]
    cell_map = np.zeros(shape)
    nucleus_map = np.zeros(shape)
    droplets = np.zeros(shape)
    for c in scene["cells"]:
        f = np.sqrt(max(0.0, 1.0 - (z / c["cz"]) ** 2))  # ellipsoid cross-section
        if f > 0.05:
            r = _ellipse_radius(yy, xx, c["cy"], c["cx"], c["ay"] * f, c["ax"] * f, c["theta"])
            cell_map = np.maximum(cell_map, _soft_inside(r))
        n = c["nucleus"]
        fn = np.sqrt(max(0.0, 1.0 - (z / n["cz"]) ** 2))
        if fn > 0.05:
            r = _ellipse_radius(yy, xx, n["cy"], n["cx"], n["ay"] * fn, n["ax"] * fn, n["theta"])
            nucleus_map = np.maximum(nucleus_map, _soft_inside(r, 0.12))
        for d in c["droplets"]:
            _add_blob(droplets, yy, xx, d, d["amp"] * np.exp(-0.5 * ((z - d["z"]) / 0.3) ** 2),
                      d["sigma"])
    for d in scene["free"]:
        _add_blob(droplets, yy, xx, d, d["amp"] * np.exp(-0.5 * ((z - d["z"]) / 0.3) ** 2),
                  d["sigma"])
    nucleus_map = np.minimum(nucleus_map, cell_map)
    cytoplasm = cell_map - nucleus_map
    t1, t2 = scene["textures"]
    a = z * np.pi / 4.0
    texture = np.cos(a) * t1 + np.sin(a) * t2  # unit variance at every z, changes slowly

    protein = (0.45 * cytoplasm + 0.9 * nucleus_map) * np.clip(1.0 + 0.2 * texture, 0.4, None)
    lipid = 0.12 * cytoplasm * np.clip(1.0 - 0.3 * texture, 0.4, None) + droplets
    occupied = np.clip(0.45 * cell_map + 0.35 * nucleus_map + 0.6 * np.minimum(droplets, 1.0),
                       0.0, 0.92)
    water = 0.55 * (1.0 - occupied)
    cy, cx = scene["illum_centre"]
    rr = ((yy - cy) ** 2 + (xx - cx) ** 2) / (0.75 * max(ny, nx)) ** 2
    background = 0.25 * np.clip(1.0 - 0.35 * rr, 0.5, None) + 0.08 * cell_map
    return np.stack([lipid, protein, water, background])


# -- public makers ------------------------------------------------------------------

def _check_args(shape, n_channels, noise, wavenumber_range):
    shape = tuple(int(v) for v in shape)
    if len(shape) != 2 or min(shape) < 8:
        raise ValueError(f"shape must be (Y, X) with both at least 8, got {shape}.")
    if isinstance(n_channels, bool) or int(n_channels) != n_channels or n_channels < 4:
        raise ValueError(f"n_channels must be an integer >= 4, got {n_channels!r}.")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}.")
    lo, hi = (float(v) for v in wavenumber_range)
    if not hi > lo:
        raise ValueError(f"wavenumber_range must be increasing, got {wavenumber_range!r}.")
    return shape, int(n_channels), float(noise), (lo, hi)


def _seed(random_state) -> int:
    from .init import resolve_random_state

    if random_state is None:
        raise ValueError("random_state=None would make the sample irreproducible; pass an int.")
    return resolve_random_state(random_state)


def _finish(maps, wavenumbers, noise, rng, seed, spectral_axis_index):
    H = crs_spectra(wavenumbers)
    k, c = H.shape
    spatial = maps.shape[1:]
    W = maps.reshape(k, -1).T  # view: (n_pixels, k), C order of the spatial axes
    clean = W @ H
    sigma = noise * float(clean.max())
    eps = sigma * rng.standard_normal(clean.shape) if sigma > 0 else np.zeros_like(clean)
    noisy = (clean + eps).astype(np.float32)
    # the floor is measured on the float32 stack that is handed out
    actual = noisy.astype(np.float64) - clean
    floor = float(np.linalg.norm(actual) / np.linalg.norm(noisy.astype(np.float64)))
    stack = np.ascontiguousarray(np.moveaxis(noisy.reshape((*spatial, c)), -1,
                                             spectral_axis_index))
    return SyntheticSample(
        stack=stack, W=W, H=H, maps=maps, spectral_axis=np.asarray(wavenumbers, float),
        spectral_unit="cm^-1", component_names=COMPONENT_NAMES, colors=_COLORS,
        noise=noise, noise_floor=floor, random_state=seed,
        spectral_axis_index=spectral_axis_index,
    )


def make_crs_sample(*, shape=(128, 128), n_channels=64, noise=0.01, random_state=0,
                    wavenumber_range=WAVENUMBER_RANGE) -> SyntheticSample:
    """Build the synthetic CRS stack ``(C, Y, X)`` of a few cells.

    Parameters
    ----------
    shape : tuple of int, default (128, 128)
        Image size ``(Y, X)``.  The scene scales with it (about three cells per
        128 x 128 pixels).
    n_channels : int, default 64
        Number of channels, evenly spaced over ``wavenumber_range``.  64 channels
        over 300 cm^-1 is ~4.8 cm^-1 per channel, finer than the narrowest band.
    noise : float, default 0.01
        Standard deviation of the additive Gaussian noise, relative to the maximum
        of the noise-free stack.  0 gives the exact ``W H``.
    random_state : int or numpy Generator, default 0
        Seed; the same seed gives the same sample.
    wavenumber_range : (float, float), default (2800, 3100)
        First and last wavenumber in cm^-1.

    Returns
    -------
    SyntheticSample
        ``stack`` float32 ``(C, Y, X)`` and the ground truth ``W``, ``H``, ``maps``.

    Examples
    --------
    >>> from napari_unmix.core.synthetic import make_crs_sample
    >>> s = make_crs_sample(shape=(64, 64), n_channels=32)
    >>> s.stack.shape, s.W.shape, s.H.shape
    ((32, 64, 64), (4096, 4), (4, 32))
    """
    shape, n_channels, noise, (lo, hi) = _check_args(shape, n_channels, noise, wavenumber_range)
    seed = _seed(random_state)
    rng = np.random.default_rng(seed)
    scene = _draw_scene(rng, shape)
    maps = _render(scene, shape, z=0.0)
    return _finish(maps, np.linspace(lo, hi, n_channels), noise, rng, seed, 0)


def make_crs_sample_4d(*, n_planes=8, shape=(96, 96), n_channels=48, noise=0.01,
                       random_state=0, wavenumber_range=WAVENUMBER_RANGE) -> SyntheticSample:
    """Build a synthetic z-series (or time series) ``(Z, C, Y, X)``.

    The scene of :func:`make_crs_sample` is rendered at ``n_planes`` depths: cells
    are ellipsoids whose cross-section grows and shrinks with z, droplets fade in
    and out around their own depth, textures rotate slowly and the whole scene
    drifts by a few pixels, so that neighbouring planes are similar but not equal.

    Parameters
    ----------
    n_planes : int, default 8
        Number of z planes (>= 1).
    shape, n_channels, noise, random_state, wavenumber_range
        As in :func:`make_crs_sample`.

    Returns
    -------
    SyntheticSample
        ``stack`` float32 ``(Z, C, Y, X)`` with ``spectral_axis_index=1``; ``maps``
        ``(k, Z, Y, X)``; ``W`` rows in the C order of ``(Z, Y, X)``.
    """
    shape, n_channels, noise, (lo, hi) = _check_args(shape, n_channels, noise, wavenumber_range)
    if isinstance(n_planes, bool) or int(n_planes) != n_planes or n_planes < 1:
        raise ValueError(f"n_planes must be a positive integer, got {n_planes!r}.")
    n_planes = int(n_planes)
    seed = _seed(random_state)
    rng = np.random.default_rng(seed)
    scene = _draw_scene(rng, shape)
    zs = np.linspace(-0.7, 0.7, n_planes) if n_planes > 1 else np.zeros(1)
    maps = np.stack([_render(scene, shape, z=z) for z in zs], axis=1)
    return _finish(maps, np.linspace(lo, hi, n_channels), noise, rng, seed, 1)
