"""The built-in modes: one run function each, registered in :data:`~.modes.MODES`.

Each function has the signature of :attr:`ModeSpec.run <.modes.ModeSpec.run>`:
``run(data, config, seeds, callback) -> UnmixResult``.  To add a mode, write such a
function and register a :class:`~.modes.ModeSpec` for it, here or in a plugin.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from .modes import SEED_OPTIONS, SOLVER_OPTIONS, ModeSpec, register_mode
from .nmf import nmf
from .nnls import nnls
from .offsets import move_offsets_to_flat_row
from .pca import pca
from .solvers import NMF_SOLVERS, NNLS_SOLVERS, pick_nmf_solver, pick_nnls_solver
from .summaries import OffsetsMoved

__all__ = ["run_nmf", "run_nnls", "run_pca", "run_seeded_nmf"]


def _n_components(config) -> int:
    return config.n_components if config.n_components is not None else len(config.components)


def run_pca(data, config, seeds, callback):
    """PCA of the fitted data (channel-standardised unless ``standardize=False``)."""
    return pca(data.fit, _n_components(config), standardize=config.standardize,
               callback=callback, n_jobs=config.n_jobs)


def run_nmf(data, config, seeds, callback):
    """Random NNMF: an unguided start (``init``), then the chosen solver."""
    return nmf(data.fit, _n_components(config), solver=config.solver, backend=config.backend,
               init=config.init, tol=config.tol, max_iter=config.max_iter,
               random_state=config.random_state, callback=callback, device=config.device,
               abundance=config.abundance, loss=config.loss, n_jobs=config.n_jobs)


def _absorb_offsets(res, components, locked):
    """Apply the first locked flat row that takes offsets (``Flat(absorb_offsets=True)``)."""
    flat = next((j for j, c in enumerate(components)
                 if locked[j] and getattr(c.h_source, "absorb_offsets", False)), None)
    if flat is None:
        return res
    W, H, moved = move_offsets_to_flat_row(res.W, res.H, flat=flat,
                                           keep=np.flatnonzero(locked))
    offsets = OffsetsMoved(into=components[flat].name,
                           amounts={c.name: float(moved[j]) for j, c in enumerate(components)
                                    if j != flat and not locked[j]})
    return dataclasses.replace(res, W=W, H=H, summary=res.summary.replace(offsets_moved=offsets))


def run_seeded_nmf(data, config, seeds, callback):
    """Seeded NNMF from the seeds' ``W0`` / ``H0``, locked rows kept fixed."""
    res = nmf(data.fit, len(seeds.names), W0=seeds.W0, H0=seeds.H0,
              locked=seeds.locked if seeds.locked.any() else None,
              anchor=config.anchor_strengths(), solver=config.solver,
              backend=config.backend, tol=config.tol, max_iter=config.max_iter,
              random_state=config.random_state, callback=callback, device=config.device,
              component_names=seeds.names, abundance=config.abundance, loss=config.loss,
              n_jobs=config.n_jobs)
    return _absorb_offsets(res, config.components, seeds.locked)


def run_nnls(data, config, seeds, callback):
    """Fixed-H NNLS: the abundances of the seed spectra, kept fixed."""
    if seeds.fallback_components:
        warnings.warn(
            "Fixed-H NNLS: no usable spectrum was given for "
            f"{', '.join(repr(x) for x in seeds.fallback_components)}; a fallback "
            "spectrum was estimated and kept fixed. It is an emergency stand-in, not a "
            "trusted reference: give a measured spectrum for reliable abundances.",
            UserWarning, stacklevel=3)
    return nnls(data.fit, seeds.H0, solver=config.solver, backend=config.backend,
                tol=config.tol, max_iter=config.max_iter, callback=callback,
                device=config.device, abundance=config.abundance, loss=config.loss,
                component_names=seeds.names, n_jobs=config.n_jobs)


def _pick_seeded(solver="auto", backend="auto", config=None):
    """The seeded-NNMF solver: anchored unless ``config`` trusts no free seed at all."""
    anchored = True
    if config is not None:
        strengths = np.asarray(config.anchor_strengths(), dtype=float)
        anchored = bool(((strengths > 0) & np.isfinite(strengths)).any())
    locked = config is not None and any(c.locked for c in config.components)
    return pick_nmf_solver(solver, backend, seeded=True, anchored=anchored,
                           partial_lock=locked, abundance=_abundance(config),
                           loss=_loss(config))


def _abundance(config) -> str:
    return "free" if config is None else config.abundance


def _loss(config) -> str:
    return "frobenius" if config is None else config.loss


register_mode(ModeSpec(
    "pca", "PCA", "Which spectral directions vary most?", run_pca,
    options=frozenset({"n_components", "standardize", "n_jobs"}), non_negative=False,
    func=pca))
register_mode(ModeSpec(
    "nmf", "Random NNMF", "Which non-negative additive parts are there?", run_nmf,
    options=SOLVER_OPTIONS | {"n_components", "init", "random_state", "abundance", "loss"},
    pick_solver=lambda solver="auto", backend="auto", config=None: pick_nmf_solver(
        solver, backend, abundance=_abundance(config), loss=_loss(config)),
    solvers=NMF_SOLVERS, func=nmf))
register_mode(ModeSpec(
    "seeded-nmf", "Seeded NNMF", "Refine the spectra and maps I already roughly know.",
    run_seeded_nmf,
    options=SOLVER_OPTIONS | SEED_OPTIONS | {"random_state", "anchor", "abundance", "loss"},
    seeded=True,
    builds_maps=True,
    pick_solver=_pick_seeded,
    solvers=NMF_SOLVERS, func=nmf))
register_mode(ModeSpec(
    "nnls", "Fixed-H NNLS", "How much of each trusted spectrum is in each pixel?", run_nnls,
    options=SOLVER_OPTIONS | (SEED_OPTIONS - {"w_seed_mode", "overwrite"})
    | {"abundance", "loss"},
    seeded=True,
    fixed_spectra=True,
    pick_solver=lambda solver="auto", backend="auto", config=None: pick_nnls_solver(
        solver, backend, abundance=_abundance(config), loss=_loss(config)),
    solvers=NNLS_SOLVERS, func=nnls))
