"""Real scenes with ground truth (Samson, Jasper Ridge) and ROIs painted on them.

Shared by ``benchmarks/seeded_nmf.py`` and the real-data tests.  The data live in
``../shared/data`` beside the repository (see its README); :func:`load_scene` raises
``FileNotFoundError`` naming the file when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SCENES = ("samson", "jasper")


def load_scene(name: str, data: Path = DATA):
    """``(cube (Y, X, C) float32, endmembers (k, C), abundances (n_pixels, k), names)``."""
    from scipy.io import loadmat

    if name == "samson":
        path = data / "samson" / "Samson.mat"
    elif name == "jasper":
        path = data / "jasper_ridge" / "jasperRidge2_R198.mat"
    else:
        raise ValueError(f"Unknown scene {name!r}; one of {', '.join(SCENES)}.")
    if not path.exists():
        raise FileNotFoundError(f"{path} is absent (third-party data, see shared/data/README).")
    d = loadmat(path)
    if name == "samson":  # pixels are stored column-major
        cube = d["Y"].T.reshape(95, 95, 156, order="F")
        return cube.astype(np.float32), d["GT"], d["S_GT"].reshape(-1, 3), \
            ["rock", "tree", "water"]
    cube = d["Y"].T.reshape(100, 100, 198, order="F") / float(d["maxValue"].item())
    A = d["A"].T.reshape(100, 100, 4, order="F").reshape(-1, 4)
    return cube.astype(np.float32), d["M"].T, A, ["tree", "water", "soil", "road"]


def disc_rois(A, shape, radius: int = 2) -> list[np.ndarray]:
    """One disc ROI per material, centred on its purest neighbourhood.

    What a user paints over a region they recognise: the disc's centre is where the
    ground-truth abundance, averaged over the disc's bounding square, is highest.
    """
    from scipy.ndimage import uniform_filter

    maps = np.asarray(A).reshape(*shape, -1)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    rois = []
    for j in range(maps.shape[-1]):
        smooth = uniform_filter(maps[..., j], size=2 * radius + 1, mode="constant")
        y, x = np.unravel_index(np.argmax(smooth), shape)
        rois.append((yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2)
    return rois


def drawn_disc_rois(A, shape, n_draws: int, *, radius: int = 2, purity: float = 0.95,
                    seed: int = 0) -> list[list[np.ndarray]]:
    """``n_draws`` sets of disc ROIs, one disc per material in each set.

    :func:`disc_rois` takes the first position (in raster order) of the purest
    neighbourhood, and many positions tie there: on Jasper Ridge that first one sits
    at the top-left edge of the tree and water regions, 0.11-0.13 rad from the
    published spectra, where the typical disc of the same purity is 0.04-0.06.
    A user paints somewhere on a region they recognise, not at a chosen spot, so
    here each disc's centre is drawn at random (``seed``) among the positions whose
    disc-averaged ground-truth abundance is at least ``purity`` times the best.
    """
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(seed)
    maps = np.asarray(A).reshape(*shape, -1)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    draws: list[list[np.ndarray]] = [[] for _ in range(n_draws)]
    for j in range(maps.shape[-1]):
        smooth = uniform_filter(maps[..., j], size=2 * radius + 1, mode="constant")
        centres = np.argwhere(smooth >= purity * smooth.max())
        picks = centres[rng.choice(len(centres), n_draws, replace=len(centres) < n_draws)]
        for rois, (y, x) in zip(draws, picks, strict=True):
            rois.append((yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2)
    return draws
