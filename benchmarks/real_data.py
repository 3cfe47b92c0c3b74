"""Seeded unmixing on real scenes with ground truth: Samson and Jasper Ridge.

For each scene, the published endmembers seed three analyses run through
``napari_unmix.core.run_analysis``:

* fixed-H NNLS (the endmembers kept fixed; its spectral angle is 0 by construction),
* seeded NNMF (endmembers as ``H0``, ``W0`` from the ``nnls`` W-seed mode),
* random NNMF (``nndsvda`` initialisation, no seeds) for comparison,

the NNMF ones with every implementation named by ``--nmf``,

and the table gives the mean spectral angle (radians) to the true endmembers and
the mean abundance RMSE (``core.metrics``, ``scale="sum-to-one"``: the convention
of these benchmarks, whose abundances sum to one per pixel) beside the published
numbers quoted in ``shared/data/README.md``.

Data: ``../shared/data`` next to the repository (override with ``--data``).
Samson: 95 x 95 pixels, 156 bands, ground truth by F. Zhu (arXiv:1708.05125).
Jasper Ridge: 100 x 100 pixels, 198 bands, reflectance x 5000.  Published scores:
Tao et al., IEEE TGRS 62:5540113 (2024), Tables II-III.

A third check uses real Raman spectra with a descending axis (``supure``'s
carbohydrate mixtures: pure spectra of fructose, lactose and ribose on 1600 -> 200
cm^-1 and 21 mixtures of known composition).  The pure spectra go through a CSV
file as a user would import them, are resampled onto an ascending stack axis with
half the sampling, and fixed-H NNLS (and seeded NNMF) of the mixtures must return
the known composition; the table gives the resampling error against
``numpy.interp`` and the RMSE of the fitted proportions.

Usage::

    python benchmarks/real_data.py [--data DIR] [--max-iter 1000] [--tol 1e-4]
                                   [--nmf auto,mu/torch] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from napari_unmix.core import AnalysisConfig, ComponentSpec, Spectrum, run_analysis
from napari_unmix.core.metrics import abundance_rmse, mean_spectral_angle

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data"

#: (mean spectral angle, abundance RMSE) quoted in shared/data/README.md
PUBLISHED = {
    "samson": {"best deep-learning method (Tao et al. 2024)": (0.0253, 0.0274),
               "scikit-learn NMF, nndsvda init": (0.40, 0.20)},
    "jasper": {"best deep-learning method (Tao et al. 2024)": (0.0308, 0.0951),
               "scikit-learn NMF, nndsvda init": (0.41, 0.23)},
}


def load_samson(data: Path):
    from scipy.io import loadmat

    d = loadmat(data / "samson" / "Samson.mat")
    cube = d["Y"].T.reshape(95, 95, 156, order="F")  # pixels are stored column-major
    return cube, d["GT"], d["S_GT"].reshape(-1, 3), ["rock", "tree", "water"]


def load_jasper(data: Path):
    from scipy.io import loadmat

    d = loadmat(data / "jasper_ridge" / "jasperRidge2_R198.mat")
    cube = d["Y"].T.reshape(100, 100, 198, order="F") / float(d["maxValue"].item())
    A = d["A"].T.reshape(100, 100, 4, order="F").reshape(-1, 4)
    return cube, d["M"].T, A, ["tree", "water", "soil", "road"]


def run_scene(name, cube, M, A, names, args):
    comps = [ComponentSpec(n, h_source=Spectrum(M[i])) for i, n in enumerate(names)]
    configs = {"fixed-H NNLS (published endmembers)": AnalysisConfig(mode="nnls",
                                                                      components=comps)}
    for impl in args.nmf.split(","):
        solver, _, backend = impl.partition("/")
        common = dict(tol=args.tol, max_iter=args.max_iter, random_state=args.random_state,
                      solver=solver, backend=backend or "auto")
        configs[f"seeded NNMF (published endmembers), {impl}"] = AnalysisConfig(
            mode="seeded-nmf", components=comps, **common)
        configs[f"random NNMF (nndsvda), {impl}"] = AnalysisConfig(
            mode="nmf", n_components=len(names), components=comps, **common)
    rows = []
    for label, cfg in configs.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = run_analysis(cube, cfg, spectral_axis=-1)
        dt = time.perf_counter() - t0
        rows.append({
            "scene": name, "method": label, "backend": f"{res.params.get('solver')}/{res.backend}",
            "mean_spectral_angle": mean_spectral_angle(M, res.H),
            "abundance_rmse": abundance_rmse(A, res.W, H_true=M, H_est=res.H,
                                             scale="sum-to-one"),
            "n_iter": res.n_iter, "time_s": dt,
            "warnings": sorted({str(w.message).split(". ")[0] for w in caught}),
        })
    for label, (msa, rmse) in PUBLISHED[name].items():
        rows.append({"scene": name, "method": f"published: {label}", "backend": "",
                     "mean_spectral_angle": msa, "abundance_rmse": rmse, "n_iter": None,
                     "time_s": None, "warnings": []})
    return rows


def carbohydrate_check(data: Path, args):
    """Import the descending-axis carbohydrate spectra from CSV, resample, unmix the mixtures."""
    import tempfile

    import numpy as np

    from napari_unmix.core.spectra import read_spectra

    d = np.load(data / "supure_raman_emulsion" / "carbs_mixtures.npz")
    wn, S, D, C = d["wavenumber_cm1"], d["S"], d["D"], d["C"]
    names = [str(n) for n in d["component_names"]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "carbohydrates.csv"
        with open(path, "w") as fh:  # the axis as the file has it: descending
            fh.write("wavenumber," + ",".join(names) + "\n")
            for w, row in zip(wn, S, strict=True):
                fh.write(f"{float(w)!r}," + ",".join(repr(float(v)) for v in row) + "\n")
        table = read_spectra(path)
    # an ascending stack axis at 1.7 cm^-1 steps, off the file's 1 cm^-1 grid
    axis = np.arange(201.0, 1599.0, 1.7)
    stack = np.stack([np.interp(axis, wn[::-1], row[::-1]) for row in D])  # 21 mixtures
    pure = np.stack([np.interp(axis, wn[::-1], S[::-1, j]) for j in range(len(names))])
    resampled = table.resampled(axis)
    interp_err = float(np.abs(resampled - pure).max())
    comps = [ComponentSpec(n, h_source=Spectrum(table.values[j], axis=table.axis, label=n))
             for j, n in enumerate(names)]
    truth = C / C.sum(axis=1, keepdims=True)
    rows = []
    for mode in ("nnls", "seeded-nmf"):
        cfg = AnalysisConfig(mode=mode, components=comps, max_iter=args.max_iter, tol=args.tol,
                             random_state=args.random_state)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = run_analysis(stack[:, :, None], cfg, spectral_axis=1, spectral_values=axis)
        dt = time.perf_counter() - t0
        # H keeps the imported spectra's scale, so W * |h| is each component's share
        share = res.W * np.linalg.norm(res.H, axis=1) / np.linalg.norm(pure, axis=1)
        share = share / share.sum(axis=1, keepdims=True)
        solver = res.summary.get("solver", res.summary.get("algorithm"))
        rows.append({"mode": mode, "solver": f"{solver}/{res.backend}",
                     "rmse": float(np.sqrt(np.mean((share - truth) ** 2))),
                     "angle": float(mean_spectral_angle(pure, res.H)),
                     "n_iter": res.n_iter, "time_s": dt,
                     "warnings": [str(w.message) for w in caught]})
    return {"descending": bool(table.descending), "n_target": int(axis.size),
            "interp_max_abs_err": interp_err, "rows": rows}


def print_table(rows):
    head = f"{'scene':7s} {'method':62s} {'solver':18s} {'angle':>7s} {'aRMSE':>7s} " \
           f"{'n_iter':>6s} {'time s':>7s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        n_iter = "" if r["n_iter"] is None else str(r["n_iter"])
        t = "" if r["time_s"] is None else f"{r['time_s']:.2f}"
        print(f"{r['scene']:7s} {r['method']:62s} {r['backend']:18s} "
              f"{r['mean_spectral_angle']:7.4f} {r['abundance_rmse']:7.4f} {n_iter:>6s} {t:>7s}")
        for w in r["warnings"]:
            print(f"{'':8s}  warning: {w}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--max-iter", type=int, default=1000)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--nmf", default="auto,mu/torch",
                   help="comma-separated NNMF implementations SOLVER[/BACKEND] to compare "
                        "(default: auto,mu/torch)")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = p.parse_args(argv)
    rows = []
    for name, loader, rel in (("samson", load_samson, "samson/Samson.mat"),
                              ("jasper", load_jasper, "jasper_ridge/jasperRidge2_R198.mat")):
        if not (args.data / rel).exists():
            print(f"skipping {name}: {args.data / rel} not found")
            continue
        rows += run_scene(name, *loader(args.data), args)
    print("angle: mean spectral angle to the true endmembers (radians); aRMSE: mean abundance "
          "RMSE, abundances normalised to sum to one per pixel")
    print_table(rows)
    carbs = None
    if (args.data / "supure_raman_emulsion" / "carbs_mixtures.npz").exists():
        carbs = carbohydrate_check(args.data, args)
        print(f"\nRaman carbohydrate mixtures (supure): spectra imported from CSV with a "
              f"{'descending' if carbs['descending'] else 'ascending'} axis, resampled onto "
              f"{carbs['n_target']} ascending channels; max |difference to numpy.interp| = "
              f"{carbs['interp_max_abs_err']:.1e}")
        for r in carbs["rows"]:
            print(f"  {r['mode']:11s} {r['solver']:14s} angle {r['angle']:.4f}  proportion "
                  f"RMSE {r['rmse']:.4f}  n_iter {r['n_iter']}  {r['time_s']:.2f} s")
            for w in r["warnings"]:
                print(f"{'':14s}warning: {w}")
    else:
        print("skipping the carbohydrate mixtures: supure_raman_emulsion/carbs_mixtures.npz "
              "not found")
    if args.json:
        args.json.write_text(json.dumps({"scenes": rows, "carbohydrates": carbs}, indent=1))
    return rows


if __name__ == "__main__":
    main()
