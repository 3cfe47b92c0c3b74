"""Side-by-side benchmark: napari-unmix's solvers beside their peers, on the same data.

Everything runs in one process on one deterministic synthetic stack
(``benchmarks/_data.py``: by default 512 x 512 pixels x 64 channels, float32,
k = 5 strongly overlapping Gaussian resonances, sparse abundances, 1 % noise).

Fixed-H NNLS, given the true spectra ``H``:

* ours: ``napari_unmix.core.nnls`` with ``solver="auto"`` (the exact active-set
  solver, numpy on a CPU machine), the active-set solver in torch, and FISTA in
  torch with and without adaptive restart (default ``tol`` / ``max_iter``);
* SciPy: ``scipy.optimize.nnls`` called pixel by pixel in a Python loop, on
  ``--scipy-pixels`` randomly chosen pixels, its time extrapolated linearly to
  all pixels (the row says so);
* HS-MOSAIC: ``solve_batched_nnls_projected_gradient`` with its defaults.

Every NNLS row gets the objective gap ``(F - F*) / F*`` with
``F = sum_p 0.5 ||x_p - w_p H||^2`` (float64), ``F*`` that of the exact
active-set solution in numpy; that reference is itself checked against SciPy on
the SciPy pixels.

NNMF from the default init (nndsvda, ``random_state=0``):

* peers, ``--nmf-iter`` (200) iterations each from the same ``W0, H0``:
  scikit-learn ``cd`` and ``mu`` (``init="custom"``, ``tol=0`` so that all
  iterations run) and HS-MOSAIC's ``solve_nmf_multiplicative_updates``
  (``w_init``/``h_init``, ``tol=0``); the init is not counted in their time;
* ours: ``napari_unmix.core.nmf`` given the same ``W0, H0`` (so that no init
  is timed) with the solver named: the one ``solver="auto"`` picks for random
  NNMF on this machine (HALS in numpy on a CPU), HALS in torch, and
  multiplicative updates in numpy and torch; ``tol=0`` for ``--nmf-iter``
  iterations, with a callback that records the time at every sampled iteration
  (every ``--every``; the error evaluations are counted in the time).
  Reported: the time of the whole run and the time to the first sample at or
  below the *target*, the lowest relative error ``||X - WH|| / ||X||`` that any
  peer reaches in its iterations.  The noise floor ``||X - X_clean|| / ||X||``
  is printed beside.  A bisection over shorter runs then finds the first
  iteration at or below the target, and a run of exactly that many iterations
  (error evaluated at its start and end only) is timed (``--no-stepwise`` skips
  this).

Times are in seconds and in *units*: the ratio to one float32 ``X @ H.T`` timed
(median of 5) right before each run, so that ratios stay meaningful on a busy
machine; the table gives the median over ``--repeats`` (NNLS) or
``--nmf-repeats`` (NNMF) runs.  The ratio of process CPU times is given too:
with one thread it is the steadier number on a shared machine.  ``--threads``
limits BLAS, torch and the CPU affinity of the process (and so the numpy HALS
threads) to the same number.  On a machine shared with other work, use
``--threads 1``: a parallel region whose second thread waits for a busy core
stalls for a scheduler time slice, which inflates every small torch or BLAS
call many times over.

Peak memory: fixed-H NNLS and NNMF with the ``auto`` choices are each run in a
fresh subprocess that loads ``X`` from disk; its peak resident set size
(``VmHWM``, reset after the imports where Linux allows it) minus the resident
size after the imports is compared with the bounds ``X + 200 MB`` and ``3 X``.
The peers are measured the same way for comparison.

Results: a table on stdout, ``results.json``, ``results.csv``, ``results.md``
and ``benchmark.png`` (time vs error) in ``--out``.

CUDA: when ``torch.cuda.is_available()`` the torch rows (ours and HS-MOSAIC's)
are repeated on ``cuda``.  HS-MOSAIC is optional: without it its rows say why
they did not run.  See ``benchmarks/README.md`` for the environment.

Usage::

    python benchmarks/peers.py                       # full size, about 10 min on 1 thread
    python benchmarks/peers.py --pixels 16384 --repeats 2 --nmf-repeats 1   # smoke test
    python benchmarks/peers.py --threads 1 --out bench-out/peers-1thread
    python benchmarks/peers.py --cores 2 --plot docs/images/cores.png   # 1 vs 2 cores
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # _data lives next to this file
    sys.path.insert(0, str(HERE))

from _data import make_stack  # noqa: E402
from _timing import median_time  # noqa: E402

MB = 2**20
NNLS_FACTOR_TARGET = 15.0  # exact NNLS in <= 15 units ...
NNLS_GAP_TARGET = 1e-6     # ... with an objective gap <= 1e-6
NMF_FRACTION_TARGET = 0.25  # the best peer's error in <= 1/4 of the fastest peer's time
NNLS_MEM_EXTRA = 200 * MB  # fixed-H NNLS peak <= X + 200 MB
NMF_MEM_FACTOR = 3.0       # NNMF peak <= 3 X


# --------------------------------------------------------------------------- setup

def set_threads(n_threads):
    """Use ``n_threads`` everywhere (CPU affinity, BLAS, torch); returns the number."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if n_threads is None:
        n_threads = len(cpus) if cpus else (os.cpu_count() or 1)
    if cpus and n_threads < len(cpus):
        os.sched_setaffinity(0, cpus[:n_threads])  # numpy HALS sizes its pool by this
    from threadpoolctl import threadpool_limits

    threadpool_limits(n_threads)
    torch = optional_torch()
    if torch is not None:
        torch.set_num_threads(n_threads)
    return n_threads


def optional_torch():
    from napari_unmix.core.device import get_torch

    return get_torch()


def torch_devices(args):
    """Devices of the torch rows (ours and HS-MOSAIC's): ``--torch-devices``, CUDA if seen."""
    wanted = {d.strip() for d in args.torch_devices.split(",") if d.strip()}
    unknown = wanted - {"cpu", "cuda"}
    if unknown:
        raise SystemExit(f"--torch-devices takes cpu and/or cuda, not {sorted(unknown)}")
    devices = ["cpu"] if "cpu" in wanted else []
    torch = optional_torch()
    if ("cuda" in wanted and not args.no_cuda and torch is not None
            and torch.cuda.is_available()):
        devices.append("cuda")
    return devices


def load_hs_mosaic():
    """``(nnls_fn, nmf_fn, version, None)`` or ``(None, None, None, reason)``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # it imports PyQt5
    try:
        from importlib.metadata import version

        from hs_mosaic.widgets.nnls_pytorch import solve_batched_nnls_projected_gradient
        from hs_mosaic.widgets.torch_nmf import solve_nmf_multiplicative_updates
    except Exception as exc:  # not installed, no Qt, no torch ...
        return None, None, None, f"hs-mosaic not importable ({type(exc).__name__}: {exc})"
    logging.getLogger("hs_mosaic").setLevel(logging.WARNING)
    return (solve_batched_nnls_projected_gradient, solve_nmf_multiplicative_updates,
            version("hs-mosaic"), None)




class Unit:
    """One float32 ``X @ H.T``: the time unit, re-measured before every run.

    Calling it returns the median wall time of ``repeats`` products; the median
    process CPU time of the same products is kept in ``cpu``.
    """

    def __init__(self, X, H):
        self.X = X
        self.HT = np.ascontiguousarray(H.T.astype(X.dtype))
        self.samples = []
        self.cpu = None

    def __call__(self, repeats=5):
        walls, cpus = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            self.X @ self.HT
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        t = float(np.median(walls))
        self.cpu = float(np.median(cpus))
        self.samples.append(t)
        return t


def sync(device):
    if device and str(device).startswith("cuda"):
        optional_torch().cuda.synchronize()


def quiet(fn):
    """``fn`` with warnings silenced (warm-up runs)."""
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    return run


def measure(fn, unit, repeats, device=None, warmup=None):
    """Time ``fn()`` ``repeats`` times, each paired with the unit measured just before.

    Returns ``(wall_s, units, cpu_units, out)``: the median wall time, the median
    of the ratios wall / unit, the median ratio of process CPU times, and the
    last output.
    """
    if warmup is not None:
        quiet(warmup)()
        sync(device)
    times, ratios, cpu_ratios, out = [], [], [], None
    for _ in range(repeats):
        ref = unit()
        ref_cpu = unit.cpu
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        sync(device)
        t = time.perf_counter() - t0
        times.append(t)
        ratios.append(t / ref)
        cpu_ratios.append((time.process_time() - c0) / max(ref_cpu, 1e-9))
    return float(np.median(times)), float(np.median(ratios)), float(np.median(cpu_ratios)), out


def pixel_objective(X, W, H, chunk=65536):
    """``0.5 ||x_p - w_p H||^2`` per pixel, in float64."""
    H = np.asarray(H, dtype=np.float64)
    out = np.empty(X.shape[0])
    for s in range(0, X.shape[0], chunk):
        R = X[s:s + chunk].astype(np.float64) - W[s:s + chunk].astype(np.float64) @ H
        out[s:s + chunk] = 0.5 * np.einsum("ij,ij->i", R, R)
    return out


def rel_error(X, W, H, x_norm):
    from napari_unmix.core.solvers._common import residual_norm

    return residual_norm(X, np.asarray(W, X.dtype), np.asarray(H, X.dtype)) / x_norm


def row(problem, name, impl, device, **kw):
    base = {"problem": problem, "solver": name, "impl": impl, "device": device,
            "time_s": None, "units": None, "cpu_units": None, "gap": None,
            "rel_error": None, "n_iter": None,
            "target_time_s": None, "target_units": None, "target_cpu_units": None,
            "target_iter": None, "cpu_fraction_of_fastest_peer": None,
            "fraction_of_fastest_peer": None, "step_iter": None, "step_time_s": None,
            "step_units": None, "step_cpu_units": None, "step_error": None,
            "step_fraction_of_fastest_peer": None, "note": ""}
    base.update(kw)
    return base


def unavailable(problem, name, impl, device, reason):
    return row(problem, name, impl, device, note=f"not available: {reason}")


# --------------------------------------------------------------------------- NNLS

def bench_nnls(X, H, unit, args, mosaic, devices, log):
    from scipy.optimize import nnls as scipy_nnls

    from napari_unmix.core import nnls

    rows = []
    n = X.shape[0]
    # the exact reference: active set in numpy (independent of where "auto" points)
    ref_res = nnls(X, H, solver="active-set", backend="numpy")
    f_ref = pixel_objective(X, ref_res.W, H)
    F_ref = float(f_ref.sum())
    log(f"exact reference (active-set numpy): F* = {F_ref:.8e}")

    def gap_of(W, sel=None):
        f = pixel_objective(X if sel is None else X[sel], W, H)
        ref = F_ref if sel is None else float(f_ref[sel].sum())
        return (float(f.sum()) - ref) / ref

    def ours(label, device, **kw):
        caught_messages = []

        def fn():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = nnls(X, H, device=device if device else "auto", **kw)
            caught_messages[:] = [str(w.message) for w in caught]
            return res

        def warm():
            nnls(X[:4096], H, device=device if device else "auto", **kw)

        t, u, cu, res = measure(fn, unit, args.repeats, device=device, warmup=warm)
        s = res.summary
        note = f"{s['solver']}/{res.backend} on {res.device}"
        if caught_messages:
            note += "; hit max_iter in some chunk"
        r = row("nnls", label, "napari-unmix", res.device, time_s=t, units=u, cpu_units=cu,
                gap=gap_of(res.W), n_iter=s["max_chunk_iter"], note=note)
        rows.append(r)
        log(fmt_row(r))

    ours("nnls auto", None)
    torch = optional_torch()
    for dev in devices:
        if torch is None:
            rows.append(unavailable("nnls", "active-set torch", "napari-unmix", dev,
                                    "torch not installed"))
            break
        ours("active-set torch", dev, solver="active-set", backend="torch")
        ours("fista torch", dev, solver="fista", backend="torch")
        ours("fista torch restart", dev, solver="fista", backend="torch", restart=True)

    # SciPy, pixel by pixel, on a subsample, extrapolated
    n_sub = min(args.scipy_pixels, n)
    sel = np.sort(np.random.default_rng(1).choice(n, size=n_sub, replace=False))
    A = H.astype(np.float64).T.copy()
    Xs = X[sel]

    def scipy_loop():
        W = np.empty((n_sub, H.shape[0]))
        for i in range(n_sub):
            W[i] = scipy_nnls(A, Xs[i].astype(np.float64))[0]
        return W

    for x in Xs[: min(200, n_sub)]:  # warm-up
        scipy_nnls(A, x.astype(np.float64))
    ref_sub = unit()
    ref_cpu = unit.cpu
    t0, c0 = time.perf_counter(), time.process_time()
    W_sp = scipy_loop()
    t_sub = time.perf_counter() - t0
    c_sub = time.process_time() - c0
    t_all = t_sub * n / n_sub
    f_sp = pixel_objective(Xs, W_sp, H)
    # the reference checked against SciPy on these pixels
    f_ref_sub = f_ref[sel]
    denom = np.maximum(f_sp, np.finfo(float).tiny)
    ref_check = {"pixels": int(n_sub),
                 "sum_gap": float((f_ref_sub.sum() - f_sp.sum()) / f_sp.sum()),
                 "max_pixel_gap": float(np.max((f_ref_sub - f_sp) / denom))}
    note = (f"Python loop over {n_sub} of {n} pixels, time extrapolated x{n / n_sub:.2f}"
            if n_sub < n else "Python loop over all pixels")
    r = row("nnls", "scipy.optimize.nnls loop", "SciPy", "cpu", time_s=t_all,
            units=t_all / ref_sub, cpu_units=c_sub * n / n_sub / max(ref_cpu, 1e-9),
            gap=gap_of(W_sp, sel) if n_sub else None, note=note)
    rows.append(r)
    log(fmt_row(r))
    log(f"reference vs SciPy on {n_sub} pixels: sum gap {ref_check['sum_gap']:.2e}, "
        f"largest pixel gap {ref_check['max_pixel_gap']:.2e} (<= 0 or ~1e-9: exact)")

    # HS-MOSAIC, black box
    nnls_fn, _, _, reason = mosaic
    basis = np.ascontiguousarray(H.T)
    for dev in devices:
        name = "HS-MOSAIC projected gradient"
        if nnls_fn is None:
            rows.append(unavailable("nnls", name, "HS-MOSAIC", dev, reason))
            continue
        t, u, cu, (W, info) = measure(
            lambda dev=dev: nnls_fn(X, basis, device=dev), unit, args.repeats, device=dev,
            warmup=lambda dev=dev: nnls_fn(X[:4096], basis, device=dev))
        W = np.asarray(W)
        r = row("nnls", name, "HS-MOSAIC", dev, time_s=t, units=u, cpu_units=cu, gap=gap_of(W),
                n_iter=info.get("max_chunk_iter"),
                note=f"its defaults (max_iter={info.get('max_iter')}, tol={info.get('tol')}, "
                     "FISTA acceleration)")
        rows.append(r)
        log(fmt_row(r))
    return rows, {"F_exact": F_ref, "reference_vs_scipy": ref_check}


# --------------------------------------------------------------------------- NNMF

def bench_nmf(X, unit, args, mosaic, devices, x_norm, noise_floor, log):
    from sklearn.decomposition import non_negative_factorization
    from sklearn.exceptions import ConvergenceWarning

    from napari_unmix.core import nmf
    from napari_unmix.core.init import initialize_factors

    k = args.k
    n_iter = args.nmf_iter
    rows, curves, steps = [], {}, {}
    t0 = time.perf_counter()
    W0, H0 = initialize_factors(X, k, init="nndsvda", random_state=0)
    t_init = time.perf_counter() - t0
    init_err = rel_error(X, W0, H0, x_norm)
    log(f"nndsvda init (core.init, as core.nmf builds it): {t_init:.3f} s, not counted; "
        f"rel. error {init_err:.5f}")

    # ---- peers
    def sk(solver):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return non_negative_factorization(
                X, W=W0.copy(), H=H0.copy(), n_components=k, init="custom", solver=solver,
                beta_loss="frobenius", tol=0.0, max_iter=n_iter, alpha_W=0.0, alpha_H=0.0)

    peer_runs = [(f"sklearn {s}", "scikit-learn", "cpu", lambda s=s: sk(s), None)
                 for s in ("cd", "mu")]
    _, mu_fn, _, reason = mosaic
    for dev in devices:
        name = "HS-MOSAIC MU"
        if mu_fn is None:
            rows.append(unavailable("nmf", name, "HS-MOSAIC", dev, reason))
            continue

        def hs(dev=dev, iters=n_iter):
            return mu_fn(X, n_components=k, w_init=W0.copy(), h_init=H0.copy(), device=dev,
                         max_iter=iters, tol=0.0)
        peer_runs.append((name, "HS-MOSAIC", dev, hs,
                          (lambda dev=dev: hs(dev, 3)) if dev != "cpu" else None))
    peers = []
    for name, impl, dev, fn, warm in peer_runs:
        t, u, cu, out = measure(fn, unit, args.nmf_repeats, device=dev, warmup=warm)
        W, H = out[0], out[1]
        its = out[2] if impl == "scikit-learn" else out[2].get("n_iter")
        err = rel_error(X, W, H, x_norm)
        note = f"{its} iterations from the nndsvda init, tol=0"
        if its is not None and int(its) < n_iter:
            note += f" (stopped by its own rule before {n_iter})"
        r = row("nmf", name, impl, dev, time_s=t, units=u, cpu_units=cu, rel_error=err,
                n_iter=its, note=note)
        rows.append(r)
        peers.append(r)
        log(fmt_row(r))
    if peers:
        target = min(p["rel_error"] for p in peers)
        fastest = min(peers, key=lambda p: p["units"])
        log(f"target: rel. error {target:.6f} (best peer); fastest peer {fastest['solver']} "
            f"on {fastest['device']}: {fastest['time_s']:.2f} s = {fastest['units']:.0f} units")
    else:
        target, fastest = args.target, None
        log(f"no peer ran; target rel. error from --target: {target}")

    # ---- ours: the same W0, H0 passed as seeds, so that no init is timed.  The
    # solver is named explicitly (seeded runs would otherwise pick MU): for the
    # "auto" row it is what core.nmf picks for random NNMF on this machine.
    from napari_unmix.core.solvers import pick_nmf_solver

    auto = pick_nmf_solver("auto", "auto")
    ours = [(f"nmf auto = {auto.algorithm} {auto.backend}", auto.algorithm, auto.backend,
             "auto")]
    torch = optional_torch()
    if torch is None:
        rows.append(unavailable("nmf", "hals/mu torch", "napari-unmix", "cpu",
                                "torch not installed"))
    else:
        ours += [("hals torch", "hals", "torch", dev) for dev in devices]
    ours.append(("mu numpy", "mu", "numpy", "cpu"))
    if torch is not None:
        ours += [("mu torch", "mu", "torch", dev) for dev in devices]

    for label, solver, backend, dev in ours:
        def run(solver=solver, backend=backend, dev=dev, iters=n_iter, every=args.every):
            samples = []
            t0, c0 = time.perf_counter(), time.process_time()

            def cb(info):
                samples.append((info.iteration, time.perf_counter() - t0,
                                time.process_time() - c0, info.error))

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                res = nmf(X, k, W0=W0, H0=H0, solver=solver, backend=backend, device=dev,
                          tol=0.0, max_iter=iters, callback=cb, track_error_every=every)
            sync(res.device)
            return res, samples, time.perf_counter() - t0, time.process_time() - c0

        if backend == "torch":  # warm-up: torch kernels, CUDA context
            quiet(lambda run=run: run(iters=2))()
        results = []
        for _ in range(args.nmf_repeats):
            ref = unit()
            results.append((ref, unit.cpu) + run())
        ref, _, res, samples, _, _ = results[0]
        s = res.summary
        if abs(samples[0][3] / x_norm - init_err) > 1e-5 * init_err:
            log(f"  warning: {label} did not start from the benchmark's init "
                f"({samples[0][3] / x_norm:.6f} vs {init_err:.6f})")
        hits = []
        for r_, rc_, _, smp, _, _ in results:
            hit = next(((it, t, c) for it, t, c, e in smp if e / x_norm <= target), None)
            hits.append((hit, r_, rc_))
        r = row("nmf", label, "napari-unmix", res.device,
                time_s=float(np.median([x[4] for x in results])),
                units=float(np.median([x[4] / x[0] for x in results])),
                cpu_units=float(np.median([x[5] / x[1] for x in results])),
                rel_error=s["relative_error"], n_iter=s["n_iter"],
                note=f"{s['solver']}/{s['backend']} on {res.device}; {s['n_iter']} iterations "
                     f"from the nndsvda init, error sampled every {args.every}")
        if target is not None and all(h is not None for h, _, _ in hits):
            r["target_time_s"] = float(np.median([h[1] for h, _, _ in hits]))
            r["target_units"] = float(np.median([h[1] / r_ for h, r_, _ in hits]))
            r["target_cpu_units"] = float(np.median([h[2] / rc_ for h, _, rc_ in hits]))
            r["target_iter"] = int(np.median([h[0] for h, _, _ in hits]))
            if fastest is not None:  # in units: the load may change between the runs
                r["fraction_of_fastest_peer"] = r["target_units"] / fastest["units"]
                r["cpu_fraction_of_fastest_peer"] = (r["target_cpu_units"]
                                                     / fastest["cpu_units"])
            if args.stepwise:
                stepwise_target(r, run, target, x_norm, unit, args, fastest, log)
        elif target is not None:
            r["note"] += f"; target not reached in {n_iter} iterations"
        rows.append(r)
        log(fmt_row(r))
        curves[f"{label} ({res.device})"] = [
            (it, t / ref, e / x_norm) for it, t, _, e in samples if it > 0]
        if r.get("step_units") is not None:
            steps[f"{label} ({res.device})"] = (r["step_iter"], r["step_units"], r["step_error"])
    meta = {"stepwise": steps, "t_init_s": t_init, "init_rel_error": init_err,
            "target_rel_error": target,
            "noise_floor": noise_floor,
            "fastest_peer": None if fastest is None else {
                k_: fastest[k_] for k_ in ("solver", "device", "time_s", "units", "cpu_units")}}
    return rows, curves, meta


def stepwise_target(r, run, target, x_norm, unit, args, fastest, log):
    """The first iteration at or below ``target``, and the time of a run that long.

    The sampled run only tells that the target was reached between two samples.
    Runs of ``j`` iterations with a single error evaluation at the end (the
    solvers' error decreases monotonically for HALS; the search assumes it) find
    the first such ``j`` by bisection; a run of exactly ``j`` iterations is then
    timed (``--nmf-repeats`` times, paired with the unit).
    """
    lo, hi = max(r["target_iter"] - args.every, 0), r["target_iter"]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        res, _, _, _ = run(iters=mid, every=mid)
        if res.summary["relative_error"] <= target:
            hi = mid
        else:
            lo = mid
    walls, units, cpus, err = [], [], [], None
    for _ in range(args.nmf_repeats):
        ref = unit()
        ref_cpu = unit.cpu
        res, _, wall, cpu = run(iters=hi, every=hi)
        err = res.summary["relative_error"]
        walls.append(wall)
        units.append(wall / ref)
        cpus.append(cpu / ref_cpu)
    r.update(step_iter=hi, step_time_s=float(np.median(walls)),
             step_units=float(np.median(units)), step_cpu_units=float(np.median(cpus)),
             step_error=err)
    if fastest is not None:
        r["step_fraction_of_fastest_peer"] = r["step_units"] / fastest["units"]
    log(f"  {r['solver']}: first iteration at or below the target: {hi}; a run of {hi} "
        f"iterations (error evaluated at 0 and {hi} only): {r['step_time_s']:.2f} s = "
        f"{r['step_units']:.1f} u"
        + (f" = {r['step_fraction_of_fastest_peer']:.3f} of the fastest peer"
           if fastest is not None else "") + f", rel. error {err:.6f}")


# --------------------------------------------------------------------------- memory

def _status_kb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def child_main(args):
    """Run one solver on X loaded from disk; print peak memory as JSON."""
    set_threads(args.threads)
    import resource

    from napari_unmix.core import nmf, nnls  # noqa: F401  (imports before the baseline)

    mode = args.child
    k = args.k
    fn_nnls = fn_mu = None
    if "hsmosaic" in mode:
        fn_nnls, fn_mu, _, reason = load_hs_mosaic()
        if fn_nnls is None:
            print(json.dumps({"mode": mode, "error": reason}))
            return
    if "sklearn" in mode:
        from sklearn.decomposition import non_negative_factorization
    if "hsmosaic" in mode or "torch" in mode:
        import torch  # noqa: F401
    if "auto" in mode and optional_torch() is not None:
        torch = optional_torch()
        if torch.cuda.is_available():  # the CUDA context belongs to the baseline
            torch.empty(1, device="cuda")
    rss0 = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    X = np.load(os.path.join(args.child_data, "X.npy"))  # read straight into the array
    H = np.load(os.path.join(args.child_data, "H.npy"))
    x_bytes = X.nbytes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "nnls-auto":
            res = nnls(X, H)
            what = f"{res.summary['solver']}/{res.backend} on {res.device}"
        elif mode == "nmf-auto":
            res = nmf(X, k, random_state=0, max_iter=args.mem_iter, tol=0.0)
            what = f"{res.summary['solver']}/{res.backend} on {res.device}"
        elif mode == "nnls-hsmosaic":
            fn_nnls(X, np.ascontiguousarray(H.T), device="cpu")
            what = "HS-MOSAIC projected gradient on cpu"
        elif mode == "nmf-sklearn-cd":
            non_negative_factorization(X, n_components=k, init="nndsvda", solver="cd",
                                       tol=0.0, max_iter=args.mem_iter, random_state=0)
            what = "scikit-learn cd (its own nndsvda init)"
        elif mode == "nmf-hsmosaic":
            from napari_unmix.core.init import initialize_factors

            W0, H0 = initialize_factors(X, k, init="nndsvda", random_state=0)
            fn_mu(X, n_components=k, w_init=W0, h_init=H0, device="cpu",
                  max_iter=args.mem_iter, tol=0.0)
            what = "HS-MOSAIC MU on cpu (nndsvda init by napari-unmix)"
        else:
            raise SystemExit(f"unknown child mode {mode!r}")
    hwm = _status_kb("VmHWM")
    if hwm is None:  # not Linux: ru_maxrss (kB on Linux, bytes on macOS), never reset
        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            hwm //= 1024
    print(json.dumps({"mode": mode, "what": what, "x_bytes": x_bytes,
                      "rss_after_imports": None if rss0 is None else rss0 * 1024,
                      "peak_rss": hwm * 1024, "hwm_reset": reset}))


def bench_memory(X, H, args, log):
    modes = [("nnls-auto", X.nbytes + NNLS_MEM_EXTRA, "X + 200 MB"),
             ("nmf-auto", NMF_MEM_FACTOR * X.nbytes, "3 X"),
             ("nnls-hsmosaic", None, ""), ("nmf-sklearn-cd", None, ""),
             ("nmf-hsmosaic", None, "")]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = tmp
        np.save(os.path.join(tmp, "X.npy"), X)
        np.save(os.path.join(tmp, "H.npy"), H)
        for mode, bound, bound_text in modes:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode,
                   "--child-data", path, "--k", str(args.k), "--mem-iter", str(args.mem_iter)]
            if args.threads is not None:
                cmd += ["--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            try:
                res = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                res = {"mode": mode, "error": f"child failed (rc {proc.returncode}): "
                       + proc.stderr.strip()[-300:]}
            res["bound"] = bound
            res["bound_text"] = bound_text
            if "error" not in res:
                res["run_peak"] = res["peak_rss"] - (res["rss_after_imports"] or 0)
                res["within_bound"] = None if bound is None else res["run_peak"] <= bound
                log(f"peak RSS {mode:15s}: {res['run_peak'] / MB:7.1f} MB above the imports "
                    f"({res['peak_rss'] / MB:.0f} MB total, imports "
                    f"{res['rss_after_imports'] / MB:.0f} MB)"
                    + (f"; bound {bound_text} = {bound / MB:.0f} MB: "
                       f"{'OK' if res['within_bound'] else 'OVER'}" if bound else "")
                    + f"  [{res['what']}]" + ("" if res["hwm_reset"] else " (HWM not reset)"))
            else:
                log(f"peak RSS {mode:15s}: not measured: {res['error']}")
            out.append(res)
    return out


# --------------------------------------------------------------------------- output

def _num(v, spec):
    return "" if v is None else format(v, spec)


def fmt_row(r):
    if r["time_s"] is None:
        return (f"{r['problem']:4s} {r['solver']:30s} {r['impl']:13s} {r['device']:5s} "
                f"[{r['note']}]")
    return (f"{r['problem']:4s} {r['solver']:30s} {r['impl']:13s} {r['device']:5s} "
            f"{_num(r['time_s'], '9.3f'):>9s} s {_num(r['units'], '8.1f'):>8s} u "
            f"(CPU {_num(r['cpu_units'], '7.1f'):>7s} u)  "
            + (f"gap {_num(r['gap'], '9.2e'):>9s}" if r["problem"] == "nnls" else
               f"err {_num(r['rel_error'], '.6f'):>9s}")
            + (f"  target at it {r['target_iter']}: {r['target_time_s']:.2f} s = "
               f"{r['target_units']:.1f} u = {r['fraction_of_fastest_peer']:.3f} of the fastest "
               f"peer (CPU {r['cpu_fraction_of_fastest_peer']:.3f})"
               if r.get("target_time_s") is not None and r.get("fraction_of_fastest_peer")
               is not None else "")
            + (f"  [{r['note']}]" if r["note"] else ""))


MD_COLUMNS = [("problem", "problem", None), ("solver", "solver", None), ("impl", "from", None),
              ("device", "device", None), ("time_s", "time (s)", ".3f"),
              ("units", "x X@H.T", ".1f"), ("cpu_units", "CPU time x X@H.T", ".1f"),
              ("gap", "objective gap", ".1e"),
              ("rel_error", "rel. error", ".5f"), ("target_units", "to target (x X@H.T)", ".1f"),
              ("fraction_of_fastest_peer", "to target / fastest peer", ".3f"),
              ("step_iter", "first it. at target", None),
              ("step_units", "run of that many it. (x X@H.T)", ".1f"),
              ("step_fraction_of_fastest_peer", "that / fastest peer", ".3f"),
              ("note", "note", None)]


def markdown_table(rows):
    lines = ["| " + " | ".join(h for _, h, _ in MD_COLUMNS) + " |",
             "| " + " | ".join("---" for _ in MD_COLUMNS) + " |"]
    for r in rows:
        cells = []
        for key, _, spec in MD_COLUMNS:
            v = r.get(key)
            cells.append("" if v is None else (format(v, spec) if spec else str(v)))
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot(path, rows, curves, nmf_meta, unit_s, title):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"no plot: matplotlib not importable ({exc})"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 5.9))
    floor = 1e-12
    markers = {"napari-unmix": "o", "SciPy": "s", "HS-MOSAIC": "^", "scikit-learn": "D",
               "sklearn mu": "v"}
    for r in rows:
        if r["problem"] != "nnls" or r["units"] is None:
            continue
        gap = max(r["gap"], floor) if r["gap"] is not None else floor
        style = ({} if r["impl"] == "napari-unmix" else
                 {"facecolors": "none", "edgecolors": "k"})
        ax1.scatter(r["units"], gap, marker=markers.get(r["impl"], "x"), s=45, **style,
                    label=f"{r['solver']} ({r['device']})")
    ax1.axvline(NNLS_FACTOR_TARGET, color="0.5", ls="--", lw=0.8,
                label=f"target: {NNLS_FACTOR_TARGET:g} x X @ H.T")
    ax1.axhline(NNLS_GAP_TARGET, color="0.5", ls=":", lw=0.8,
                label=f"target: gap {NNLS_GAP_TARGET:g}")
    ax1.set(xscale="log", yscale="log", xlabel="time (multiples of one X @ H.T)",
            ylabel=f"objective gap to the exact optimum (floored at {floor:g})",
            title="fixed-H NNLS (true H)")
    if any(r["problem"] == "nnls" and r["units"] is not None for r in rows):
        ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    for i, (label, pts) in enumerate(curves.items()):
        if not pts:
            continue
        _, t, e = zip(*pts, strict=True)
        ax2.plot(t, e, marker=".", ms=3, lw=1, color=f"C{i}", label=label)
    for i, (label, (_, u, e)) in enumerate(nmf_meta.get("stepwise", {}).items()):
        color = f"C{list(curves).index(label)}" if label in curves else f"C{i}"
        ax2.scatter(u, e, marker="*", s=90, color=color, zorder=3,
                    label="ours, run of exactly the iterations to the target"
                    if i == 0 else None)
    for r in rows:
        if r["problem"] == "nmf" and r["impl"] != "napari-unmix" and r["units"] is not None:
            mark = markers.get(r["solver"], markers.get(r["impl"], "x"))
            ax2.scatter(r["units"], r["rel_error"], marker=mark, s=50,
                        facecolors="none", edgecolors="k",
                        label=f"{r['solver']} ({r['device']}), {r['n_iter']} it")
    if nmf_meta.get("target_rel_error"):
        ax2.axhline(nmf_meta["target_rel_error"], color="0.4", ls="--", lw=0.8,
                    label="best peer's error")
    noise_floor = nmf_meta.get("noise_floor")
    if noise_floor is not None:
        ax2.axhline(noise_floor, color="0.6", ls=":", lw=0.8, label="noise floor")
    fp = nmf_meta.get("fastest_peer")
    if fp:
        ax2.axvline(fp["units"] * NMF_FRACTION_TARGET, color="0.6", ls="-.", lw=0.8,
                    label="1/4 of the fastest peer's time")
    errs = [e for pts in curves.values() for _, _, e in pts]
    errs += [r["rel_error"] for r in rows if r["problem"] == "nmf" and r["rel_error"]]
    if errs:
        lo = min(errs + ([noise_floor] if noise_floor is not None else []))
        ax2.set_ylim(lo * 0.9, min(max(errs), 4 * lo) * 1.05)
    ax2.set(xscale="log", xlabel="time (multiples of one X @ H.T)",
            ylabel="relative error ||X - WH|| / ||X||", title="NNMF from the nndsvda init")
    if errs:
        ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.suptitle(f"{title}; one X @ H.T = {unit_s * 1e3:.1f} ms", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def plot_title(n_pixels, n_channels, k, n_threads):
    return (f"{n_pixels} pixels x {n_channels} channels, k = {k}, float32, "
            f"{n_threads} thread(s)")


def replot(path, plot_path):
    """Redraw the plot of an earlier run from its ``results.json``."""
    res = json.loads(path.read_text())
    curves = {label: [tuple(p) for p in pts] for label, pts in res["nmf_curves"].items()}
    (n_pixels, n_channels), k = res["data"]["shape"], res["data"]["k"]
    target = Path(plot_path) if plot_path else path.with_name("benchmark.png")
    problem = plot(target, res["rows"], curves, res["nmf"], res["unit_s"],
                   plot_title(n_pixels, n_channels, k, res["machine"]["threads"]))
    print(problem or f"plot: {target}")


def machine_info(n_threads):
    info = {"platform": platform.platform(), "python": platform.python_version(),
            "cpus_visible": os.cpu_count(), "threads": n_threads}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("numpy", "scipy", "scikit-learn", "torch", "hs-mosaic", "napari-unmix"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = None
    torch = optional_torch()
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# --------------------------------------------------------------------------- main

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pixels", type=int, default=512 * 512, help="number of pixels")
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--k", type=int, default=5, help="number of components")
    p.add_argument("--noise", type=float, default=0.01, help="noise / signal RMS")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for BLAS, torch and the process (default: all visible CPUs)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per NNLS solver")
    p.add_argument("--nmf-repeats", type=int, default=3, help="timed runs per NNMF solver")
    p.add_argument("--nmf-iter", type=int, default=200, help="NNMF iterations")
    p.add_argument("--every", type=int, default=10, help="error sampling of our NNMF solvers")
    p.add_argument("--no-stepwise", dest="stepwise", action="store_false",
                   help="skip the search for the exact iteration at which our NNMF "
                        "solvers reach the target")
    p.add_argument("--scipy-pixels", type=int, default=16384,
                   help="pixels of the SciPy per-pixel loop (time extrapolated to all)")
    p.add_argument("--target", type=float, default=None,
                   help="NNMF target rel. error when no peer runs")
    p.add_argument("--sections", default="nnls,nmf,memory",
                   help="comma list of nnls, nmf, memory")
    p.add_argument("--mem-iter", type=int, default=20, help="NNMF iterations in the memory runs")
    p.add_argument("--no-cuda", action="store_true", help="skip the CUDA rows")
    p.add_argument("--torch-devices", default="cpu,cuda",
                   help="devices of the torch rows, ours and HS-MOSAIC's (cuda only where "
                        "torch sees a GPU); e.g. 'cuda' to skip the torch-CPU rows on a GPU "
                        "machine")
    p.add_argument("--no-hs-mosaic", action="store_true", help="skip HS-MOSAIC")
    p.add_argument("--out", default="bench-out/peers", help="folder for the results")
    p.add_argument("--plot", default=None,
                   help="PNG path of the plot (default: OUT/benchmark.png)")
    p.add_argument("--replot", default=None, metavar="RESULTS_JSON",
                   help="only redraw the plot (--plot, default next to the JSON) from a "
                        "results.json of an earlier run")
    p.add_argument("--cores", type=int, default=None, metavar="N",
                   help="instead: every solver and peer on 1 and on N cores (taskset and "
                        "thread limits alike), ratios to X @ H.T on those cores and the "
                        "1 -> N speed-ups (benchmarks/cores.py; --plot is its speed-up plot)")
    p.add_argument("--rounds", type=int, default=1,
                   help="with --cores: alternate the 1-core and N-core runs this many times")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-data", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    if args.replot:
        return replot(Path(args.replot), args.plot)
    if args.cores:
        from cores import run_cores

        return run_cores(args)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    n_threads = set_threads(args.threads)
    args.threads = n_threads
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    mosaic = ((None, None, None, "skipped (--no-hs-mosaic)") if args.no_hs_mosaic
              else load_hs_mosaic())
    devices = torch_devices(args)
    stack = make_stack(args.pixels, args.channels, args.k, args.noise)
    X, H = stack.X, stack.H_true.astype(np.float32)
    x_norm = float(np.linalg.norm(X.astype(np.float64)))
    noise_floor = stack.noise_floor
    del stack
    unit = Unit(X, H)
    unit_s = median_time(lambda: X @ unit.HT, 15)
    info = machine_info(n_threads)
    log(f"X {X.shape} {X.dtype} ({X.nbytes / MB:.0f} MB), k = {args.k}; "
        f"noise floor ||noise||/||X|| = {noise_floor:.5f}")
    log(f"unit: one X @ H.T = {unit_s * 1e3:.2f} ms (median of 15); threads: {n_threads} "
        f"(BLAS, torch, CPU affinity); torch rows on: {', '.join(devices) or 'none'}")
    log(f"HS-MOSAIC: {mosaic[2] or mosaic[3]}")
    log(f"machine: {info.get('cpu', '?')}, {info['platform']}; "
        + ", ".join(f"{k_} {info[k_]}" for k_ in ("numpy", "scipy", "scikit-learn", "torch")))

    rows, curves, nnls_meta, nmf_meta, memory = [], {}, {}, {}, []
    if "nnls" in sections:
        log("\n-- fixed-H NNLS (true H) --")
        r, nnls_meta = bench_nnls(X, H, unit, args, mosaic, devices, log)
        rows += r
    if "nmf" in sections:
        log(f"\n-- NNMF, {args.nmf_iter} iterations from nndsvda --")
        r, curves, nmf_meta = bench_nmf(X, unit, args, mosaic, devices, x_norm, noise_floor,
                                        log)
        rows += r
    if "memory" in sections:
        log("\n-- peak memory (fresh subprocess each) --")
        memory = bench_memory(X, H, args, log)

    verdicts = []
    auto = next((r for r in rows if r["solver"] == "nnls auto"), None)
    if auto:
        ok = auto["units"] <= NNLS_FACTOR_TARGET and abs(auto["gap"]) <= NNLS_GAP_TARGET
        verdicts.append(f"exact NNLS (auto): {auto['units']:.1f} units (target <= "
                        f"{NNLS_FACTOR_TARGET:g}), gap {auto['gap']:.1e}: "
                        f"{'MET' if ok else 'MISSED'}")
    for r in rows:
        if r["problem"] == "nmf" and r["impl"] == "napari-unmix" and r["units"] is not None:
            f = r["fraction_of_fastest_peer"]
            fs = r.get("step_fraction_of_fastest_peer")
            if f is None:
                verdicts.append(f"NNMF {r['solver']} ({r['device']}): target error not reached")
                continue
            text = (f"NNMF {r['solver']} ({r['device']}): best peer's error at sample "
                    f"{r['target_iter']} in {r['target_units']:.1f} units = {f:.3f} of the "
                    "fastest peer's time")
            if fs is not None:
                text += (f"; first reached at it {r['step_iter']}, a run that long: "
                         f"{r['step_units']:.1f} units = {fs:.3f}")
            best = fs if fs is not None else f
            verdicts.append(text + f" (target <= {NMF_FRACTION_TARGET:g}): "
                            + ("MET" if best <= NMF_FRACTION_TARGET else "MISSED"))
    for m in memory:
        if m.get("bound") and "run_peak" in m:
            verdicts.append(f"memory {m['mode']}: {m['run_peak'] / MB:.0f} MB vs "
                            f"{m['bound_text']} = {m['bound'] / MB:.0f} MB: "
                            f"{'MET' if m['within_bound'] else 'MISSED'}")
    log("\n-- summary --")
    for r in rows:
        log(fmt_row(r))
    log("")
    for v in verdicts:
        log(v)

    result = {"command": " ".join([Path(sys.executable).name] + sys.argv),
              "args": vars(args), "machine": info,
              "data": {"shape": list(X.shape), "dtype": str(X.dtype), "k": args.k,
                       "noise": args.noise, "noise_floor": noise_floor, "x_norm": x_norm},
              "unit_s": unit_s, "unit_samples_s": unit.samples, "rows": rows,
              "nnls": nnls_meta, "nmf": nmf_meta, "nmf_curves": curves, "memory": memory,
              "verdicts": verdicts}
    (out / "results.json").write_text(json.dumps(result, indent=1, default=float))
    with open(out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["problem"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.md").write_text(markdown_table(rows))
    plot_path = Path(args.plot) if args.plot else out / "benchmark.png"
    if rows:
        problem = plot(plot_path, rows, curves, nmf_meta, unit_s,
                       plot_title(X.shape[0], X.shape[1], args.k, n_threads))
        log(problem or f"plot: {plot_path}")
    log(f"results: {out / 'results.json'}, {out / 'results.csv'}, {out / 'results.md'}")


if __name__ == "__main__":
    main()
