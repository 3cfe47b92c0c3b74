"""Where to paint: suggested seed regions and the component specs that use them.

:func:`suggest_seeds` answers *where should I paint?* with a label image of
candidate seed regions that a user can edit (a Labels layer in the dock) and the
:class:`~napari_unmix.core.components.ComponentSpec` list that seeds an analysis
from them.  Two methods:

``"purest"`` (default)
    Endmember candidates by N-FINDR on denoised data with outlier guards
    (:func:`~napari_unmix.core.endmembers.purest_pixels`); each candidate's region
    is the set of pixels close to its vertex.  For data where every material has
    some pure pixels (most images of separate structures, remote-sensing scenes).
``"ward"``
    Spatially coherent regions as HS-MOSAIC's ROIs: Ward clustering of the
    denoised spectra with a pixel-adjacency connectivity (scikit-learn's
    ``AgglomerativeClustering``), one region per component.  The regions are
    mixtures where no pixel is pure; seeded NNMF then has to unmix them.

Whatever the method, :attr:`SeedSuggestion.clusters` can also hold the Ward regions
(``clusters=N``) as an overview of the image's spatially coherent parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .components import ComponentSpec, RoiLabel, RoiMask
from .data import stack_to_matrix
from .endmembers import principal_axes, purest_pixels

__all__ = ["SEED_METHODS", "SeedSuggestion", "suggest_seeds", "ward_regions"]

#: The methods of :func:`suggest_seeds`.
SEED_METHODS = ("purest", "ward")

#: Ward clustering runs on at most this many (binned) pixels.
WARD_MAX_PIXELS = 16_384


@dataclass(eq=False)
class SeedSuggestion:
    """Candidate seed regions and what they give.

    Attributes
    ----------
    labels : ndarray of int32, spatial shape
        Label ``j + 1`` marks the region of candidate ``j``; 0 is no region.
    spectra : ndarray, shape (k, n_channels)
        Mean spectrum of every region (the seed spectrum it gives).
    names : list of str
        A name per candidate (``"seed 1"`` ...).
    method : str
        ``"purest"`` or ``"ward"``.
    geometry : str or None
        ``"purest"``: the geometry used (``"affine"`` / ``"cone"``).
    vertices : list of tuple
        ``"purest"``: the spatial index of every candidate's purest pixel.
    relative_error : float
        ``||X - W S|| / ||X||`` of the non-negative fit of the data on ``spectra``.
    outliers : list of int
        Pixels (flat index) the guards set aside.
    clusters : ndarray of int32 or None
        Ward regions (labels 1..n) when asked for.
    notes : list of str
    """

    labels: np.ndarray
    spectra: np.ndarray
    names: list
    method: str
    geometry: str | None = None
    vertices: list = field(default_factory=list)
    relative_error: float = float("nan")
    outliers: list = field(default_factory=list)
    clusters: np.ndarray | None = None
    notes: list = field(default_factory=list)

    @property
    def n_components(self) -> int:
        return int(self.spectra.shape[0])

    @property
    def sizes(self) -> list[int]:
        """Pixels in every region."""
        return [int((self.labels == j + 1).sum()) for j in range(self.n_components)]

    def components(self, *, kind: str = "mask", colors=None) -> list[ComponentSpec]:
        """One :class:`ComponentSpec` per candidate, seeded from its region.

        ``kind="mask"``: :class:`RoiMask` sources (self-contained configs);
        ``kind="label"``: :class:`RoiLabel` sources, for ``run_analysis(...,
        labels=suggestion.labels)`` or a Labels layer the user edits.
        """
        if kind not in ("mask", "label"):
            raise ValueError(f"kind={kind!r} is not 'mask' or 'label'.")
        if colors is not None and len(colors) != self.n_components:
            raise ValueError(f"{len(colors)} colours for {self.n_components} components.")
        out = []
        for j, name in enumerate(self.names):
            src = RoiLabel(j + 1) if kind == "label" else RoiMask(self.labels == j + 1)
            out.append(ComponentSpec(name, color=None if colors is None else colors[j],
                                     h_source=src))
        return out

    def to_dict(self) -> dict:
        """Plain JSON (without the label images)."""
        return {"method": self.method, "geometry": self.geometry, "names": list(self.names),
                "sizes": self.sizes, "vertices": [list(map(int, v)) for v in self.vertices],
                "relative_error": float(self.relative_error),
                "n_outliers": len(self.outliers), "notes": list(self.notes),
                "n_clusters": None if self.clusters is None else int(self.clusters.max())}


def _binned(X, spatial_shape, factor):
    """Mean over ``factor x factor`` blocks of the last two spatial axes."""
    if factor == 1:
        return X, tuple(spatial_shape)
    *lead, ny, nx = spatial_shape
    py, px = -ny % factor, -nx % factor
    cube = X.reshape(*spatial_shape, X.shape[1])
    pad = [(0, 0)] * len(lead) + [(0, py), (0, px), (0, 0)]
    cube = np.pad(cube, pad, mode="edge")
    by, bx = cube.shape[-3] // factor, cube.shape[-2] // factor
    cube = cube.reshape(*lead, by, factor, bx, factor, X.shape[1]).mean(axis=(-4, -2))
    return cube.reshape(-1, X.shape[1]), (*lead, by, bx)


def ward_regions(X, spatial_shape, n_regions: int, *, n_dims: int | None = None
                 ) -> np.ndarray:
    """Spatially coherent regions: Ward clustering with a pixel-adjacency graph.

    Parameters
    ----------
    X : array_like, shape (n_pixels, n_channels)
        Pixel spectra, rows in the C order of ``spatial_shape``.
    spatial_shape : tuple of int
    n_regions : int
        Number of regions (>= 1).
    n_dims : int, optional
        Principal directions the clustering sees (default ``n_regions + 1``):
        the denoised spectra.

    Returns
    -------
    ndarray of int32, spatial shape
        Labels 1..n_regions, the largest region first.  Images with more than
        16 384 pixels are clustered on blocks of 2 x 2, 4 x 4 ... pixels (mean
        spectra) and the labels put back on the full grid.
    """
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.image import grid_to_graph

    X = np.nan_to_num(np.asarray(X, dtype=np.float64))
    spatial_shape = tuple(int(s) for s in spatial_shape)
    n = X.shape[0]
    if int(np.prod(spatial_shape)) != n:
        raise ValueError(f"spatial_shape {spatial_shape} does not hold {n} pixels.")
    n_regions = int(n_regions)
    if not 1 <= n_regions <= n:
        raise ValueError(f"n_regions must be in 1..{n}, got {n_regions}.")
    factor = 1
    while len(spatial_shape) >= 2 and np.prod(spatial_shape) / factor ** 2 > WARD_MAX_PIXELS:
        factor *= 2
    Xb, shape_b = _binned(X, spatial_shape, factor)
    r = min(n_dims or n_regions + 1, Xb.shape[1])
    mu = Xb.mean(axis=0)
    scores = (Xb - mu) @ principal_axes(Xb - mu, r).T
    conn = grid_to_graph(*shape_b) if len(shape_b) <= 3 else None
    model = AgglomerativeClustering(n_clusters=min(n_regions, Xb.shape[0]), linkage="ward",
                                    connectivity=conn)
    lab = model.fit_predict(scores).reshape(shape_b)
    if factor > 1:
        lab = np.repeat(np.repeat(lab, factor, axis=-2), factor, axis=-1)
        lab = lab[tuple(slice(0, s) for s in spatial_shape)]
    counts = np.bincount(lab.ravel())
    order = np.argsort(-counts, kind="stable")
    relabel = np.empty_like(order)
    relabel[order] = np.arange(1, order.size + 1)
    return relabel[lab].astype(np.int32)


def suggest_seeds(stack, n_components: int, *, spectral_axis: int = 0, method: str = "purest",
                  geometry: str = "auto", purity: float = 0.7, min_support: int = 5,
                  max_region: int | None = None, smooth="auto",
                  outlier_z: float = 25.0, clusters: int | None = None) -> SeedSuggestion:
    """Candidate seed regions of a stack (module documentation).

    Parameters
    ----------
    stack : array_like
        The stack (any spatial shape; the spectral axis ``spectral_axis``).  A
        ``(n_pixels, n_channels)`` matrix works with ``spectral_axis=1`` (no
        spatial smoothing, no Ward regions then: its pixels have no neighbours).
    n_components : int
        Number of candidates.
    method : {"purest", "ward"}
    geometry, purity, min_support, max_region, smooth, outlier_z
        ``"purest"``: see :func:`~napari_unmix.core.endmembers.purest_pixels`.
    clusters : int, optional
        Also compute this many Ward regions (:attr:`SeedSuggestion.clusters`).

    Returns
    -------
    SeedSuggestion
        ``.labels`` (edit it, then seed with ``.components(kind="label")`` and
        ``labels=...``), ``.components()`` (ROI-mask seeds), ``.spectra``.
    """
    if method not in SEED_METHODS:
        raise ValueError(f"method={method!r} is not one of {', '.join(SEED_METHODS)}.")
    stack = np.asarray(stack)
    X, spatial_shape = stack_to_matrix(stack, spectral_axis)
    Xd = X.astype(np.float64)
    if not np.any(np.where(np.isfinite(Xd), Xd, 0.0)):
        raise ValueError("The stack is zero in every pixel and channel: there is nothing "
                         "to suggest seed regions from. Check the image and its spectral "
                         "axis.")
    k = int(n_components)
    grid = spatial_shape if len(spatial_shape) >= 2 else None
    notes: list[str] = []
    names = [f"seed {j + 1}" for j in range(k)]
    if method == "purest":
        p = purest_pixels(Xd, k, spatial_shape=grid, geometry=geometry, purity=purity,
                          min_support=min_support, max_region=max_region, smooth=smooth,
                          outlier_z=outlier_z)
        labels = np.zeros(X.shape[0], dtype=np.int32)
        for j in range(k):
            labels[p.regions[j] & (labels == 0)] = j + 1
        alone = [names[j] for j in range(k) if not np.any(labels == j + 1)]
        if alone:
            raise ValueError(
                f"{', '.join(alone)} found no pixel of its own: its purest pixels are those "
                f"of another seed, so the stack does not hold {k} spectra that can be told "
                f"apart (a stack with fewer distinct spectra, e.g. a constant one). Reduce "
                "n_components, or check the image and its spectral axis.")
        spectra, geo, err, out = p.spectra, p.geometry, p.relative_error, p.outliers
        vertices = [tuple(int(v) for v in np.unravel_index(i, spatial_shape))
                    for i in p.vertices]
        if len(p.tried) > 1:
            notes.append("geometry " + p.geometry + " ("
                         + ", ".join(f"{g}: relative error {e:.4g}" for g, e in p.tried.items())
                         + ")")
        if out:
            notes.append(f"{len(out)} pixel(s) set aside as outliers")
        labels = labels.reshape(spatial_shape)
    else:
        if grid is None:
            raise ValueError("method='ward' needs an image (its pixels' neighbours); a "
                             "matrix of pixels has none.")
        labels = ward_regions(Xd, spatial_shape, k)
        spectra = np.stack([np.maximum(Xd[labels.ravel() == j + 1].mean(axis=0), 0.0)
                            for j in range(k)])
        geo, vertices, out = None, [], []
        err = _fit_error(Xd, spectra)
    ward = None
    if clusters:
        if grid is None:
            raise ValueError("clusters need an image (its pixels' neighbours).")
        ward = ward_regions(Xd, spatial_shape, int(clusters))
    return SeedSuggestion(labels=labels, spectra=spectra, names=names, method=method,
                          geometry=geo, vertices=vertices, relative_error=float(err),
                          outliers=list(out), clusters=ward, notes=notes)


def _fit_error(X, spectra) -> float:
    import warnings

    from .nnls import nnls

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(nnls(np.maximum(np.nan_to_num(X), 0.0), spectra).summary.relative_error)
