"""Every solver on the same cores: napari-unmix and its peers on 1 and on N cores.

``python benchmarks/peers.py --cores N`` (or this file directly) runs, for each of
1 and N cores, one fresh process pinned to that many CPUs (``sched_setaffinity``,
what ``taskset`` does) with BLAS (``threadpoolctl``), torch and napari-unmix's
``n_jobs`` all set to the same number, on the benchmark stack (``_data.py``).  In
each process every time is also divided by the floor measured right before it on
the same cores: one float32 ``X @ H.T`` (BLAS on all of those cores), followed by a
pause of ``BLAS_IDLE_S`` so that BLAS's spinning threads are idle when the timed run
starts.

Measured in each process (medians over ``--repeats`` / ``--nmf-repeats``):

* what the machine allows: a compute-bound kernel (float64 matrix products), a
  memory-bound one (``Y = 1.5 X`` over the stack) and numpy's elementwise loops on
  blocks that stay in each core's cache, each in blocks on napari-unmix's own worker
  pool: their 1 -> N speed-ups bound what any solver can gain from cores (on a
  virtual machine whose cores share one memory channel, the second bound is near 1);

* fixed-H NNLS with the true spectra: ``core.nnls`` (auto: the exact active set),
  SciPy's ``nnls`` in a per-pixel loop (``--scipy-pixels`` pixels, extrapolated),
  HS-MOSAIC's projected gradient on torch's CPU (when it imports; GPL: called as a
  black box, never read);
* 50 HALS iterations (``core.nmf``, numpy, from the nndsvda start), 200 MU
  iterations (numpy) and PCA (k components);
* random NNMF: ``core.nmf(X, k)`` with every default (HALS, the noise-scaled stop;
  its solver time, the noise estimate included, the nndsvda start not, as for the
  peers) against 200 iterations of scikit-learn ``cd`` and ``mu`` and of HS-MOSAIC's
  MU from the same start.

Reported: each row's time and ratio to the floor on 1 and on N cores, the 1 -> N
speed-up, and the issue's targets (exact NNLS <= 15 floors on N cores; speed-up >=
0.8 N for NNLS and HALS; default NNMF <= 1/4 of the fastest peer's 200-iteration
time at an error no higher than the best peer's).  The CPU time other processes
took on the pinned cores during each run is measured from ``/proc/stat`` and
printed: on a shared machine it says how far the numbers can be trusted.

Outputs in ``--out``: ``cores.json``, ``cores.md`` (the table) and the speed-up plot
(``--plot``, default ``OUT/cores.png``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent

SPEEDUP_FRACTION = 0.8     # speed-up >= 0.8 x cores for NNLS and HALS
NNLS_FLOOR_TARGET = 15.0   # exact NNLS <= 15 x one X @ H.T on the same cores
NMF_FRACTION = 0.25        # default NNMF <= 1/4 of the fastest peer's 200 iterations
#: Pause between a floor and the timed run: OpenBLAS's worker threads spin for about
#: 0.1 s after a multi-threaded call and take the cores that a solver's own worker
#: threads then need (exact NNLS on 2 cores: 82.9 ms right after a floor, 56.9 ms
#: after this pause, in one run of 2026-12-04); every row gets the same pause.
BLAS_IDLE_S = 0.3


# --------------------------------------------------------------------------- child

def _cpu_ticks(cpus):
    """(busy, total) jiffies of ``cpus`` from /proc/stat, or None off Linux."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *vals = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            v = [int(x) for x in vals[:8]]
            total += sum(v)
            busy += sum(v) - v[3] - v[4]          # minus idle and iowait
    return busy, total


def child(opts) -> dict:
    cores = opts["cores"]
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    os.sched_setaffinity(0, cpus)
    import numpy as np
    from threadpoolctl import threadpool_limits

    threadpool_limits(cores)
    sys.path.insert(0, str(HERE))
    from _data import make_stack

    from napari_unmix.core import nmf, nnls, pca
    from napari_unmix.core.device import get_torch
    from napari_unmix.core.init import initialize_factors

    torch = get_torch()
    if torch is not None:
        torch.set_num_threads(cores)
    stack = make_stack(opts["pixels"], opts["channels"], opts["k"], opts["noise"])
    X, H, k = stack.X, stack.H_true.astype(np.float32), opts["k"]
    x_norm = float(np.linalg.norm(X.astype(np.float64)))
    HT = np.ascontiguousarray(H.T)
    hz = os.sysconf("SC_CLK_TCK")

    def floor(reps=7):
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            X @ HT
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    rows = {}

    def timed(name, fn, repeats, extra=None):
        floor()                                   # warm the BLAS threads
        walls, units, out = [], [], None
        t_before, c_before = _cpu_ticks(set(cpus)), time.process_time()
        w0 = time.perf_counter()
        for _ in range(repeats):
            f = floor()
            time.sleep(BLAS_IDLE_S)               # BLAS's spinning threads go idle
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = fn()
            t = time.perf_counter() - t0
            if extra is not None and extra(out) is not None:
                t = extra(out)                    # the solver's own time
            walls.append(t)
            units.append(t / f)
        wall = time.perf_counter() - w0
        t_after, c_after = _cpu_ticks(set(cpus)), time.process_time()
        others = None
        if t_before and t_after:
            busy = (t_after[0] - t_before[0]) / hz
            others = max(0.0, busy - (c_after - c_before)) / (wall * len(cpus))
        rows[name] = {"time_s": float(np.median(walls)), "units": float(np.median(units)),
                      "others_cpu_share": others}
        return out

    # --- what the machine allows: a compute-bound and a memory-bound kernel, each in
    # blocks on napari-unmix's own pool (core.parallel, one BLAS thread per worker)
    from napari_unmix.core.parallel import Workers

    G = np.random.default_rng(0).random((16, 512, 512))
    Y = np.empty_like(X)
    stripes = [slice(i, min(i + 8192, X.shape[0])) for i in range(0, X.shape[0], 8192)]
    with Workers(cores) as pool:
        timed("machine: 16 x 512^2 float64 matmul (compute-bound)",
              lambda: pool.map(lambda g: g @ g, list(G)), opts["repeats"])
        timed("machine: Y = 1.5 X, in 32 blocks (memory-bound)",
              lambda: pool.map(lambda sl: np.multiply(X[sl], 1.5, out=Y[sl]), stripes),
              opts["repeats"])
        # numpy's own loops on data in each core's cache: 32 blocks of 256 kB, each
        # multiplied 32 times (what the active set's small elementwise steps do)
        A = np.random.default_rng(1).random((32, 32768))
        B = np.empty_like(A)

        def in_cache(i):
            for _ in range(32):
                np.multiply(A[i], 1.0001, out=B[i])

        timed("machine: 32 x 32 products over 256 kB (elementwise, in cache)",
              lambda: pool.map(in_cache, range(32)), opts["repeats"])

    # --- fixed-H NNLS
    nnls(X[:4096], H, n_jobs=cores)
    res = timed("nnls auto (active set, numpy)", lambda: nnls(X, H, n_jobs=cores),
                opts["repeats"])
    rows["nnls auto (active set, numpy)"]["rel_error"] = res.summary.relative_error
    from scipy.optimize import nnls as scipy_nnls

    n_sub = min(opts["scipy_pixels"], X.shape[0])
    Xs = X[np.linspace(0, X.shape[0] - 1, n_sub).astype(int)].astype(np.float64)
    A = H.astype(np.float64).T.copy()

    def scipy_loop():
        for x in Xs:
            scipy_nnls(A, x)
    timed("scipy.optimize.nnls loop", scipy_loop, 1)
    for key in ("time_s", "units"):
        rows["scipy.optimize.nnls loop"][key] *= X.shape[0] / n_sub
    mosaic = None
    if not opts["no_hs_mosaic"]:
        try:
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
            from hs_mosaic.widgets.nnls_pytorch import solve_batched_nnls_projected_gradient
            from hs_mosaic.widgets.torch_nmf import solve_nmf_multiplicative_updates
            mosaic = (solve_batched_nnls_projected_gradient, solve_nmf_multiplicative_updates)
        except Exception as exc:  # noqa: BLE001 - not installed, no Qt ...
            rows["HS-MOSAIC"] = {"note": f"not available: {type(exc).__name__}: {exc}"}
    if mosaic is not None:
        basis = np.ascontiguousarray(H.T)
        mosaic[0](X[:4096], basis, device="cpu")
        timed("HS-MOSAIC projected gradient (torch CPU)",
              lambda: mosaic[0](X, basis, device="cpu"), opts["repeats"])

    # --- iterations of our solvers, PCA
    W0, H0 = initialize_factors(X, k, init="nndsvda", random_state=0)
    timed("HALS, 50 iterations (numpy)",
          lambda: nmf(X, k, W0=W0, H0=H0, solver="hals", backend="numpy", tol=0.0,
                      stop="tol", max_iter=50, n_jobs=cores), opts["nmf_repeats"])
    timed("MU, 200 iterations (numpy)",
          lambda: nmf(X, k, W0=W0, H0=H0, solver="mu", backend="numpy", tol=0.0,
                      max_iter=200, n_jobs=cores), 1)
    timed("PCA", lambda: pca(X, k, n_jobs=cores), opts["repeats"])

    # --- random NNMF: our defaults against 200 iterations of the peers
    res = timed("nmf default (HALS, noise-scaled stop)",
                lambda: nmf(X, k, random_state=0, n_jobs=cores), opts["nmf_repeats"],
                extra=lambda r: r.summary.solve_time_s)
    rows["nmf default (HALS, noise-scaled stop)"].update(
        rel_error=res.summary.relative_error, n_iter=res.summary.n_iter,
        stopped_by=res.summary.stopped_by, n_jobs=res.summary.n_jobs, nmf=True)
    from sklearn.decomposition import non_negative_factorization

    for solver in ("cd", "mu"):
        out = timed(f"scikit-learn {solver}, 200 iterations",
                    lambda s=solver: non_negative_factorization(
                        X, W=W0.copy(), H=H0.copy(), n_components=k, init="custom",
                        solver=s, tol=0.0, max_iter=200), opts["nmf_repeats"])
        rows[f"scikit-learn {solver}, 200 iterations"].update(
            rel_error=float(np.linalg.norm(X - out[0] @ out[1]) / x_norm), peer=True,
            nmf=True)
    if mosaic is not None:
        out = timed("HS-MOSAIC MU, 200 iterations (torch CPU)",
                    lambda: mosaic[1](X, n_components=k, w_init=W0.copy(), h_init=H0.copy(),
                                      device="cpu", max_iter=200, tol=0.0),
                    opts["nmf_repeats"])
        W, Hm = np.asarray(out[0]), np.asarray(out[1])
        rows["HS-MOSAIC MU, 200 iterations (torch CPU)"].update(
            rel_error=float(np.linalg.norm(X - W @ Hm) / x_norm), peer=True, nmf=True)
    return {"cores": cores, "cpus": cpus, "floor_s": floor(15), "rows": rows,
            "noise_floor": stack.noise_floor}


# --------------------------------------------------------------------------- parent

def run_child(opts, cores):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child",
           json.dumps(dict(opts, cores=cores))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"the {cores}-core run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(one, many):
    n = many["cores"]
    table, verdicts = [], []
    for name, r1 in one["rows"].items():
        rn = many["rows"].get(name, {})
        if "time_s" not in r1:
            table.append({"solver": name, "note": r1.get("note", "")})
            continue
        table.append({"solver": name, "t1": r1["time_s"], "u1": r1["units"],
                      "tn": rn["time_s"], "un": rn["units"],
                      "speedup": r1["time_s"] / rn["time_s"],
                      "err": rn.get("rel_error"), "others1": r1["others_cpu_share"],
                      "othersn": rn["others_cpu_share"], "note": rn.get("stopped_by") and
                      f"{rn['n_iter']} iterations, stopped by {rn['stopped_by']}" or ""})
    by = {r["solver"]: r for r in table}
    nn = by["nnls auto (active set, numpy)"]
    met = "MET" if nn["un"] <= NNLS_FLOOR_TARGET else "MISSED"
    verdicts.append(f"exact NNLS on {n} cores: {nn['un']:.1f} x X @ H.T (target <= "
                    f"{NNLS_FLOOR_TARGET:g}): {met}")
    for name in ("nnls auto (active set, numpy)", "HALS, 50 iterations (numpy)"):
        s = by[name]["speedup"]
        verdicts.append(f"{name}: 1 -> {n} cores {s:.2f}x (target >= {SPEEDUP_FRACTION * n:.2f}"
                        f"): {'MET' if s >= SPEEDUP_FRACTION * n else 'MISSED'}")
    peers = [r for name, r in by.items() if many["rows"].get(name, {}).get("peer")]
    ours = by["nmf default (HALS, noise-scaled stop)"]
    if peers:
        fastest = min(peers, key=lambda r: r["un"])
        best = min(r["err"] for r in peers)
        frac = ours["un"] / fastest["un"]
        ok = frac <= NMF_FRACTION and ours["err"] <= best
        verdicts.append(f"default NNMF on {n} cores: {ours['un']:.0f} units = {frac:.3f} of the "
                        f"fastest peer ({fastest['solver']}, {fastest['un']:.0f} units), error "
                        f"{ours['err']:.5f} vs the best peer's {best:.5f} (target <= "
                        f"{NMF_FRACTION:g} at no higher error): {'MET' if ok else 'MISSED'}")
    return table, verdicts


def markdown(table, n):
    head = (f"| solver | 1 core: s | 1 core: x X@H.T | {n} cores: s | {n} cores: x X@H.T "
            f"| speed-up 1 -> {n} | rel. error ({n} cores) | others' CPU share (1 / {n}) | note |")
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in table:
        if "t1" not in r:
            lines.append(f"| {r['solver']} | | | | | | | | {r['note']} |")
            continue
        err = "" if r["err"] is None else f"{r['err']:.5f}"
        share = " / ".join("?" if v is None else f"{v:.0%}" for v in (r["others1"], r["othersn"]))
        lines.append(f"| {r['solver']} | {r['t1']:.3f} | {r['u1']:.1f} | {r['tn']:.3f} | "
                     f"{r['un']:.1f} | {r['speedup']:.2f} | {err} | {share} | {r['note']} |")
    return "\n".join(lines) + "\n"


def plot(path, table, n, title):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"no plot: {exc}"
    rows = [r for r in table if "t1" in r]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5.2))
    y = range(len(rows))
    a1.barh([i + 0.2 for i in y], [r["u1"] for r in rows], 0.4, label="1 core")
    a1.barh([i - 0.2 for i in y], [r["un"] for r in rows], 0.4, label=f"{n} cores")
    a1.set(yticks=list(y), yticklabels=[r["solver"] for r in rows], xscale="log",
           xlabel="time / one X @ H.T on the same cores")
    a1.axvline(NNLS_FLOOR_TARGET, color="0.5", ls="--", lw=0.8, label="NNLS target: 15")
    a1.invert_yaxis()
    a1.legend(fontsize=8)
    a2.barh(list(y), [r["speedup"] for r in rows], 0.6, color="C2")
    a2.axvline(SPEEDUP_FRACTION * n, color="0.4", ls="--", lw=0.8,
               label=f"target {SPEEDUP_FRACTION:g} x {n} (NNLS, HALS)")
    a2.axvline(1.0, color="0.7", lw=0.8)
    a2.set(yticks=list(y), yticklabels=[], xlabel=f"speed-up, 1 -> {n} cores")
    a2.invert_yaxis()
    a2.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def run_cores(args):
    """``peers.py --cores N``: the 1-core and N-core runs, the table, the plot."""
    n = int(args.cores)
    avail = len(os.sched_getaffinity(0))
    if not 1 <= n <= avail:
        raise SystemExit(f"--cores {n}: this process may use 1 .. {avail} cores")
    opts = {"pixels": args.pixels, "channels": args.channels, "k": args.k,
            "noise": args.noise, "repeats": args.repeats, "nmf_repeats": args.nmf_repeats,
            "scipy_pixels": args.scipy_pixels, "no_hs_mosaic": args.no_hs_mosaic}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {c: [] for c in (1, n)}
    for _ in range(max(1, args.rounds)):      # alternate: a change in load hits both
        for c in runs:
            runs[c].append(run_child(opts, c))
            print(f"  {c} core(s): done", flush=True)
    one, many = (_median_run(runs[c]) for c in (1, n))
    table, verdicts = summarise(one, many)
    md = markdown(table, n)
    print(md)
    for v in verdicts:
        print(v)
    title = (f"{args.pixels} pixels x {args.channels} channels, k = {args.k}, float32; one "
             f"X @ H.T: {one['floor_s'] * 1e3:.1f} ms on 1 core, {many['floor_s'] * 1e3:.1f} ms "
             f"on {n}")
    plot_path = Path(args.plot) if args.plot else out / "cores.png"
    print(plot(plot_path, table, n, title) or f"plot: {plot_path}")
    (out / "cores.md").write_text(md + "\n" + "\n".join(verdicts) + "\n")
    (out / "cores.json").write_text(json.dumps(
        {"command": " ".join([Path(sys.executable).name] + sys.argv), "options": opts,
         "runs": runs, "table": table, "verdicts": verdicts}, indent=1, default=float))


def _median_run(runs):
    """One run whose every row holds the median over the rounds."""
    import numpy as np

    out = dict(runs[0], rows={})
    for name, row in runs[0]["rows"].items():
        merged = dict(row)
        for key in ("time_s", "units", "others_cpu_share"):
            vals = [r["rows"][name][key] for r in runs if r["rows"].get(name, {}).get(key)
                    is not None]
            if vals:
                merged[key] = float(np.median(vals))
        out["rows"][name] = merged
    out["floor_s"] = float(np.median([r["floor_s"] for r in runs]))
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--pixels", type=int, default=512 * 512)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--nmf-repeats", type=int, default=3)
    p.add_argument("--scipy-pixels", type=int, default=16384)
    p.add_argument("--rounds", type=int, default=1,
                   help="alternate the 1-core and N-core runs this many times (medians)")
    p.add_argument("--no-hs-mosaic", action="store_true")
    p.add_argument("--out", default="bench-out/cores")
    p.add_argument("--plot", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse_args(sys.argv[1:])
    if a.child:
        print(json.dumps(child(json.loads(a.child)), default=float))
    else:
        run_cores(a)
