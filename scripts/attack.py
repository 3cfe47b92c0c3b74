"""Attack the CLI, the core API and the napari reader hook with bad input and count what happens.

Every case runs in its own subprocess under a timeout and is classified:

* ``result``     -- exit 0 and a sound result (finite maps, a relative error below 1,
  not all zero);
* ``error``      -- exit 2 with one ``napari-unmix: error:`` line and no traceback (CLI),
  or one ``ValueError`` / ``TypeError`` / ``FileNotFoundError`` (API);
* ``traceback``  -- a Python traceback or another exit status;
* ``silent``     -- exit 0 but NaN / all-zero maps, a relative error >= 1, or a warning
  swallowed;
* ``lost``       -- an input file changed, or a partial output set left behind;
* ``hang``       -- the timeout was reached.

Usage::

    python scripts/attack.py [--timeout 60] [--json out.json] [--only cli,api,reader]

The families mirror the reliability issue (docs/reliability.md); the cases are built
in a temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def sha(path: Path) -> str | None:
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.rglob("*")):
            if f.is_file():
                h.update(f.name.encode())
                h.update(f.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


# -- inputs ---------------------------------------------------------------------------
def make_inputs(d: Path) -> dict:
    """A set of good and bad files the cases use."""
    import tifffile

    from napari_unmix.core.synthetic import make_crs_sample
    from napari_unmix.io import write_spectra_csv, write_stack_tiff

    s = make_crs_sample(shape=(24, 20), n_channels=16, random_state=0)
    f = {}
    f["good.tif"] = d / "good.tif"
    write_stack_tiff(f["good.tif"], s.stack, axes="CYX", spectral_values=s.spectral_axis)
    f["good.npy"] = d / "good.npy"
    np.save(f["good.npy"], s.stack)
    f["spectra.csv"] = d / "spectra.csv"
    write_spectra_csv(f["spectra.csv"], s.H, s.spectral_axis, s.component_names, "cm^-1")
    f["half.csv"] = d / "half.csv"
    write_spectra_csv(f["half.csv"], s.H[:, :8], s.spectral_axis[:8], s.component_names,
                      "cm^-1")
    f["onerow.csv"] = d / "onerow.csv"
    f["onerow.csv"].write_text("cm^-1,a\n2900,1.0\n")
    f["far.csv"] = d / "far.csv"
    write_spectra_csv(f["far.csv"], s.H, s.spectral_axis + 5000, s.component_names, "cm^-1")
    f["dup.csv"] = d / "dup.csv"
    write_spectra_csv(f["dup.csv"], np.vstack([s.H, s.H[:1]]), s.spectral_axis,
                      [*s.component_names, "again"], "cm^-1")
    f["badcsv.csv"] = d / "badcsv.csv"
    f["badcsv.csv"].write_text("this is, not\na spectra, file\n")
    lab = np.zeros((24, 20), np.uint16)
    frac = s.W / s.W.sum(1, keepdims=True)
    for j in range(4):
        lab.reshape(-1)[np.argsort(-frac[:, j])[:10]] = j + 1
    f["labels.npy"] = d / "labels.npy"
    np.save(f["labels.npy"], lab)
    f["labels_wrong.npy"] = d / "labels_wrong.npy"
    np.save(f["labels_wrong.npy"], np.zeros((5, 5), np.uint16))
    f["labels_float.npy"] = d / "labels_float.npy"
    np.save(f["labels_float.npy"], lab.astype(float) + 0.5)
    f["labels_zero.npy"] = d / "labels_zero.npy"
    f["labels_zero.npy"].write_bytes(b"")
    f["labels_empty.npy"] = d / "labels_empty.npy"
    np.save(f["labels_empty.npy"], np.zeros((24, 20), np.uint16))
    nan = s.stack.copy()
    nan[3, 2, 2] = np.nan
    f["nan.npy"] = d / "nan.npy"
    np.save(f["nan.npy"], nan)
    neg = s.stack - 0.2
    f["neg.npy"] = d / "neg.npy"
    np.save(f["neg.npy"], neg)
    f["big_endian.npy"] = d / "big_endian.npy"
    np.save(f["big_endian.npy"], s.stack.astype(">f4"))
    f["int.npy"] = d / "int.npy"
    np.save(f["int.npy"], (s.stack * 1000).astype(np.uint16))
    for e in (-30, -12, -6, 6, 12, 16, 19, 30):
        key = f"scale{e}.npy"
        f[key] = d / key
        np.save(f[key], (s.stack.astype(np.float64) * 10.0 ** e).astype(np.float32))
    f["const.npy"] = d / "const.npy"
    np.save(f["const.npy"], np.ones((16, 8, 8), np.float32))
    f["zeros.npy"] = d / "zeros.npy"
    np.save(f["zeros.npy"], np.zeros((16, 8, 8), np.float32))
    f["1d.npy"] = d / "1d.npy"
    np.save(f["1d.npy"], np.ones(16, np.float32))
    f["obj.npy"] = d / "obj.npy"
    np.save(f["obj.npy"], np.array([[1, "a"]], dtype=object), allow_pickle=True)
    f["complex.npy"] = d / "complex.npy"
    np.save(f["complex.npy"], np.ones((4, 4, 4), np.complex64))
    f["tiny.npy"] = d / "tiny.npy"
    np.save(f["tiny.npy"], np.ones((16, 1, 1), np.float32))
    side = d / "side.npy"
    np.save(side, np.ones((16, 12, 10), np.float32))
    (d / "side.spectral.csv").write_text("\n".join(str(v) for v in range(10)))
    f["side.npy"] = side
    f["trunc.tif"] = d / "trunc.tif"
    f["trunc.tif"].write_bytes(f["good.tif"].read_bytes()[:500])
    f["garbage.tif"] = d / "garbage.tif"
    f["garbage.tif"].write_bytes(os.urandom(2048))
    f["garbage.npy"] = d / "garbage.npy"
    f["garbage.npy"].write_bytes(b"\x93NUMPY" + os.urandom(200))
    f["rgb.tif"] = d / "rgb.tif"
    tifffile.imwrite(f["rgb.tif"], (np.random.default_rng(0).random((20, 20, 3)) * 255)
                     .astype(np.uint8), photometric="rgb")
    f["2d.tif"] = d / "2d.tif"
    tifffile.imwrite(f["2d.tif"], np.ones((20, 20), np.float32))
    f["badconfig.json"] = d / "badconfig.json"
    f["badconfig.json"].write_text("{not json")
    f["config_k.json"] = d / "config_k.json"
    f["config_k.json"].write_text(json.dumps({"format": "napari-unmix-config", "mode": "nmf",
                                              "n_components": 2.7}))
    f["emptydir"] = d / "emptydir"
    f["emptydir"].mkdir()
    return f


# -- cases ----------------------------------------------------------------------------
def cli_cases(f: dict, d: Path) -> list[dict]:
    g = f["good.tif"]
    run = ["run"]
    cases = [
        ("good pca", [*run, g, "--mode", "pca", "-k", 3], "result"),
        ("good nmf", [*run, g, "--mode", "nmf", "-k", 4], "result"),
        ("good seeded labels", [*run, g, "--mode", "seeded-nmf", "--labels", f["labels.npy"]],
         "result"),
        ("good nnls", [*run, g, "--mode", "nnls", "--spectra", f["spectra.csv"]], "result"),
        ("good poisson", [*run, f["int.npy"], "--mode", "nnls", "--spectra", f["spectra.csv"],
                          "--loss", "poisson"], None),
        ("good sum-to-one", [*run, g, "--mode", "nnls", "--spectra", f["spectra.csv"],
                             "--abundance", "sum-to-one"], "result"),
        ("missing input", [*run, d / "nope.tif", "--mode", "pca", "-k", 2], "error"),
        ("nan stack", [*run, f["nan.npy"], "--mode", "nmf", "-k", 2], "error"),
        ("negative without policy", [*run, f["neg.npy"], "--mode", "nmf", "-k", 2], "error"),
        ("negative clip", [*run, f["neg.npy"], "--mode", "nmf", "-k", 2, "--negative", "clip"],
         "result"),
        ("k too large", [*run, g, "--mode", "nmf", "-k", 99], "error"),
        ("k zero", [*run, g, "--mode", "nmf", "-k", 0], "error"),
        ("bogus device", [*run, g, "--mode", "nmf", "-k", 2, "--device", "bogus"], "error"),
        ("bogus solver", [*run, g, "--mode", "nmf", "-k", 2, "--solver", "bogus"], "error"),
        ("tol negative", [*run, g, "--mode", "nmf", "-k", 2, "--tol", "-1"], "error"),
        ("tol nan", [*run, g, "--mode", "nmf", "-k", 2, "--tol", "nan"], "error"),
        ("random_state 2**32", [*run, g, "--mode", "nmf", "-k", 2, "--random-state",
                                str(2 ** 32)], "error"),
        ("anchor negative", [*run, g, "--mode", "seeded-nmf", "--spectra", f["spectra.csv"],
                             "--anchor", "-1"], "error"),
        ("anchor with sklearn", [*run, g, "--mode", "seeded-nmf", "--spectra", f["spectra.csv"],
                                 "--solver", "cd", "--backend", "sklearn"], "error"),
        ("tol for pca", [*run, g, "--mode", "pca", "-k", 2, "--tol", "1e-3"], "error"),
        ("spectra far", [*run, g, "--mode", "nnls", "--spectra", f["far.csv"]], "error"),
        ("spectra half", [*run, g, "--mode", "nnls", "--spectra", f["half.csv"]], "warned"),
        ("spectra one row", [*run, g, "--mode", "nnls", "--spectra", f["onerow.csv"]], "error"),
        ("spectra duplicate", [*run, g, "--mode", "nnls", "--spectra", f["dup.csv"]], "warned"),
        ("spectra not csv", [*run, g, "--mode", "nnls", "--spectra", f["badcsv.csv"]], "error"),
        ("spectra missing", [*run, g, "--mode", "nnls", "--spectra", d / "none.csv"], "error"),
        ("labels wrong shape", [*run, g, "--mode", "seeded-nmf", "--labels",
                                f["labels_wrong.npy"]], "error"),
        ("labels float", [*run, g, "--mode", "seeded-nmf", "--labels", f["labels_float.npy"]],
         "error"),
        ("labels zero bytes", [*run, g, "--mode", "seeded-nmf", "--labels",
                               f["labels_zero.npy"]], "error"),
        ("labels empty", [*run, g, "--mode", "seeded-nmf", "--labels", f["labels_empty.npy"]],
         "error"),
        ("no seeds", [*run, g, "--mode", "seeded-nmf"], "error"),
        ("broken config", [*run, g, "--config", f["badconfig.json"]], "error"),
        ("config k 2.7", [*run, g, "--config", f["config_k.json"]], "error"),
        ("no mode", [*run, g], "error"),
        ("out empty", [*run, g, "--mode", "pca", "-k", 2, "--out", ""], "error"),
        ("out is input folder", [*run, g, "--mode", "pca", "-k", 2, "--out", d], "error"),
        ("out is a file", [*run, g, "--mode", "pca", "-k", 2, "--out", f["spectra.csv"]],
         "error"),
        ("1-D stack", [*run, f["1d.npy"], "--mode", "pca", "-k", 1], "error"),
        ("object stack", [*run, f["obj.npy"], "--mode", "pca", "-k", 1], "error"),
        ("complex stack", [*run, f["complex.npy"], "--mode", "pca", "-k", 1], "error"),
        ("one pixel pca", [*run, f["tiny.npy"], "--mode", "pca", "-k", 1], "error"),
        ("one pixel nmf", [*run, f["tiny.npy"], "--mode", "nmf", "-k", 1], "result"),
        ("constant stack pca", [*run, f["const.npy"], "--mode", "pca", "-k", 1], "error"),
        ("zero stack nmf", [*run, f["zeros.npy"], "--mode", "nmf", "-k", 1], "error"),
        ("big endian", [*run, f["big_endian.npy"], "--mode", "nmf", "-k", 3], "result"),
        ("sidecar other axis", [*run, f["side.npy"], "--mode", "pca", "-k", 2], None),
        ("truncated tif", [*run, f["trunc.tif"], "--mode", "pca", "-k", 2], "error"),
        ("garbage tif", [*run, f["garbage.tif"], "--mode", "pca", "-k", 2], "error"),
        ("garbage npy", [*run, f["garbage.npy"], "--mode", "pca", "-k", 2], "error"),
        ("rgb tif", [*run, f["rgb.tif"], "--mode", "pca", "-k", 2], None),
        ("2-D tif", [*run, f["2d.tif"], "--mode", "pca", "-k", 1], "error"),
        ("empty folder", [*run, f["emptydir"], "--mode", "pca", "-k", 1], "error"),
        ("unknown option", [*run, g, "--mode", "pca", "--bogus"], "error"),
        ("demo tiny", ["demo", "--size", "2"], "error"),
    ]
    for e in (-30, -12, -6, 6, 12, 16, 19, 30):
        for mode, extra in (("nmf", ["-k", 4]), ("seeded-nmf", ["--labels", f["labels.npy"]]),
                            ("nnls", ["--spectra", f["spectra.csv"]]), ("pca", ["-k", 3])):
            if mode == "nnls":
                continue  # references on the data's scale are the user's business
            cases.append((f"scale 1e{e} {mode}", [*run, f[f"scale{e}.npy"], "--mode", mode,
                                                  *extra], "result"))
        for solver in ("mu", "hals"):
            cases.append((f"scale 1e{e} nmf {solver}", [*run, f[f"scale{e}.npy"], "--mode",
                                                        "nmf", "-k", 4, "--solver", solver],
                          "result"))
    out = []
    for i, (name, args, expect) in enumerate(cases):
        args = [str(a) for a in args]
        if args[0] == "run" and "--out" not in args:
            args += ["--out", str(d / f"out{i}")]
        if args[0] == "demo":
            args += ["--out", str(d / f"demo{i}")]
        out.append({"family": "cli", "name": name, "argv": args, "expect": expect,
                    "out": args[args.index("--out") + 1] if "--out" in args else None})
    return out


API_SNIPPETS = {
    "nmf NaN": "nmf(np.array([[1.0, np.nan], [1, 2]]), 1)",
    "nmf inf": "nmf(np.array([[1.0, np.inf], [1, 2]]), 1)",
    "nmf empty": "nmf(np.zeros((0, 4)), 1)",
    "nmf object": "nmf(np.array([[1, 'a']], dtype=object), 1)",
    "nmf k=0": "nmf(np.ones((5, 4)), 0)",
    "nmf k=2.5": "nmf(np.ones((5, 4)), 2.5)",
    "nmf negative": "nmf(-np.ones((5, 4)), 1)",
    "nmf 1 pixel": "check(nmf(np.ones((1, 4)) + np.arange(4), 1))",
    "nmf 1 channel": "check(nmf(np.ones((5, 1)), 1))",
    "nmf k = channels": "check(nmf(rng.random((30, 4)), 4, max_iter=50))",
    "nmf bad W0 shape": "nmf(rng.random((30, 4)), 2, W0=np.ones((3, 3)))",
    "nmf negative H0": "nmf(rng.random((30, 4)), 2, H0=-np.ones((2, 4)))",
    "nmf zero H0": "nmf(rng.random((30, 4)), 2, H0=np.zeros((2, 4)))",
    "nmf bad solver": "nmf(rng.random((30, 4)), 2, solver='nope')",
    "nmf tol nan": "nmf(rng.random((30, 4)), 2, tol=float('nan'))",
    "nmf max_iter 0": "nmf(rng.random((30, 4)), 2, max_iter=0)",
    "nmf random_state huge": "nmf(rng.random((30, 4)), 2, random_state=2**40)",
    "nmf identical seeds": "check(warned(nmf, rng.random((30, 4)), 2, H0=np.ones((2, 4)), "
                           "anchor=100.0))",
    "nnls H wrong width": "nnls(rng.random((30, 4)), np.ones((2, 5)))",
    "nnls H 1-D": "nnls(rng.random((30, 4)), np.ones(4))",
    "nnls H NaN": "nnls(rng.random((30, 4)), np.array([[1.0, np.nan, 1, 1]]))",
    "nnls H negative": "nnls(rng.random((30, 4)), -np.ones((1, 4)))",
    "nnls more spectra than channels": "check(warned(nnls, rng.random((30, 4)), "
                                       "rng.random((6, 4))))",
    "nnls collinear": "check(warned(nnls, rng.random((30, 4)), "
                      "np.array([[1.0, 1, 1, 1], [1, 1, 1, 1.000001]])))",
    "pca 1 pixel": "pca(np.ones((1, 4)), 1)",
    "pca constant": "pca(np.ones((10, 4)), 1)",
    "pca k too big": "pca(rng.random((10, 4)), 9)",
    "load truncated": "UnmixResult.load(trunc)",
    "load not npz": "UnmixResult.load(notnpz)",
    "config unknown field": "AnalysisConfig.from_dict({'mode': 'nmf', 'bogus': 1})",
    "config bad mode": "AnalysisConfig(mode='magic')",
    "config bad anchor": "AnalysisConfig(anchor=-1)",
    "config bad n_jobs": "AnalysisConfig(n_jobs=0)",
    "spectrum one point": "build_seeds(rng.random((30, 16)), [ComponentSpec('a', "
                          "h_source=Spectrum(np.ones(1), axis=np.ones(1)))], "
                          "spectral_values=np.arange(16.0))",
    "roi empty": "build_seeds(rng.random((30, 16)), [ComponentSpec('a', "
                 "h_source=RoiMask(np.zeros(30, bool)))])",
    "label absent": "build_seeds(rng.random((30, 16)), [ComponentSpec('a', "
                    "h_source=RoiLabel(7))], labels=np.zeros(30, int))",
}
for _e in (-30, -16, -6, 6, 16, 30):
    for _dt in ("float32", "float64"):
        API_SNIPPETS[f"nmf scale 1e{_e} {_dt}"] = (
            f"check(nmf((X0 * 1e{_e}).astype('{_dt}'), 3, random_state=0))")
        API_SNIPPETS[f"seeded scale 1e{_e} {_dt}"] = (
            f"check(nmf((X0 * 1e{_e}).astype('{_dt}'), 3, H0=H0 * 1e{_e}, anchor=1.0))")
        API_SNIPPETS[f"nnls scale 1e{_e} {_dt}"] = (
            f"check(nnls((X0 * 1e{_e}).astype('{_dt}'), H0))")
        API_SNIPPETS[f"pca scale 1e{_e} {_dt}"] = (
            f"check(pca((X0 * 1e{_e}).astype('{_dt}'), 3))")

API_PRELUDE = textwrap.dedent("""
    import sys, warnings, numpy as np
    from napari_unmix.core import *
    from napari_unmix.core import build_seeds
    rng = np.random.default_rng(0)
    axis = np.linspace(0, 1, 16)
    H0 = np.stack([0.05 + np.exp(-0.5 * ((axis - c) / 0.1) ** 2) for c in (0.3, 0.5, 0.7)])
    X0 = rng.random((60, 3)) @ H0 + 0.001
    trunc, notnpz = sys.argv[1], sys.argv[2]
    def warned(fn, *a, **kw):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            res = fn(*a, **kw)
        if not any(issubclass(x.category, UserWarning) for x in w):
            print("SILENT: no warning"); sys.exit(3)
        return res
    def check(res):
        W, H = np.asarray(res.W, float), np.asarray(res.H, float)
        rel = res.summary.relative_error
        if not (np.isfinite(W).all() and np.isfinite(H).all()):
            print("SILENT: non-finite maps"); sys.exit(3)
        if not np.abs(W).any() or rel is None or not np.isfinite(rel) or rel >= 0.5:
            print(f"SILENT: collapsed or meaningless error {rel}"); sys.exit(3)
        return res
    warnings.simplefilter("ignore")
""")


def api_cases(d: Path) -> list[dict]:
    trunc = d / "trunc_result.npz"
    trunc.write_bytes(b"PK\x03\x04" + os.urandom(100))
    notnpz = d / "not.npz"
    notnpz.write_text("hello")
    return [{"family": "api", "name": name, "code": API_PRELUDE + code + "\n",
             "args": [str(trunc), str(notnpz)]} for name, code in API_SNIPPETS.items()]


def reader_cases(f: dict, d: Path) -> list[dict]:
    cases = []
    paths = [f[k] for k in ("good.tif", "good.npy", "trunc.tif", "garbage.tif", "garbage.npy",
                            "rgb.tif", "2d.tif", "nan.npy", "obj.npy", "complex.npy",
                            "side.npy", "1d.npy", "emptydir", "big_endian.npy")]
    rng = np.random.default_rng(1)
    for i in range(40):
        p = d / f"fuzz{i}{['.tif', '.npy', '.npz'][i % 3]}"
        good = f["good.tif" if i % 3 == 0 else "good.npy"].read_bytes() if i % 3 != 2 else b""
        data = bytearray(good or os.urandom(300))
        for _ in range(rng.integers(1, 20)):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        p.write_bytes(bytes(data[: int(rng.integers(8, len(data) + 1))]))
        paths.append(p)
    code = textwrap.dedent("""
        import sys
        from napari_unmix._napari.reader import get_reader
        r = get_reader(sys.argv[1])
        if r is not None:
            layers = r(sys.argv[1])
            assert layers is None or isinstance(layers, list)
        print("ok")
    """)
    for p in paths:
        cases.append({"family": "reader", "name": f"reader {p.name}", "code": code,
                      "args": [str(p)]})
    return cases


# -- running --------------------------------------------------------------------------
def classify_cli(case, proc, inputs_before, files):
    err = proc.stderr
    if "Traceback" in err or proc.returncode not in (0, 2):
        return "traceback"
    changed = [k for k, h in inputs_before.items() if sha(files[k]) != h]
    if changed:
        return "lost"
    out = Path(case["out"]) if case.get("out") else None
    if proc.returncode == 2:
        # ours: "napari-unmix: error: ..."; argparse's: usage, then "napari-unmix run: error:"
        lines = [ln for ln in err.splitlines()
                 if ln.startswith("napari-unmix") and ": error: " in ln]
        new = set(_listing(out)) - set(case.get("out_before", ()))
        if new and not (out / "result.json").exists():
            return "lost"  # a partial output set
        return "error" if len(lines) == 1 else "traceback"
    if case["expect"] == "error":
        return "silent"
    if case["expect"] == "warned" and "warning" not in err:
        return "silent"
    if out is not None and case["argv"][0] == "run":
        npz = out / "result.npz"
        if not npz.exists() or not (out / "result.json").exists():
            return "lost"
        from napari_unmix.core import UnmixResult

        res = UnmixResult.load(npz)
        rel = res.summary.relative_error
        if not np.isfinite(res.W).all() or not res.W.any() or rel is None or rel >= 1:
            return "silent"
    return "result"


def _listing(out) -> list[str]:
    return [p.name for p in out.iterdir()] if out is not None and out.is_dir() else []


def run_case(case, timeout, files, inputs_before):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), NAPARI_UNMIX_LAZY_BYTES="")
    env.pop("NAPARI_UNMIX_LAZY_BYTES")
    try:
        if case["family"] == "cli":
            out = Path(case["out"]) if case.get("out") else None
            case["out_before"] = _listing(out)
            proc = subprocess.run([PY, "-m", "napari_unmix.cli", *case["argv"],
                                   "--no-progress"] if case["argv"][0] == "run" else
                                  [PY, "-m", "napari_unmix.cli", *case["argv"]],
                                  capture_output=True, text=True, timeout=timeout, env=env)
            return classify_cli(case, proc, inputs_before, files), proc
        proc = subprocess.run([PY, "-c", case["code"], *case["args"]], capture_output=True,
                              text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return "hang", None
    if proc.returncode == 3 or "SILENT" in proc.stdout:
        return "silent", proc
    if proc.returncode == 0:
        return "result", proc
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    if case["family"] == "api" and last.split(":")[0] in ("ValueError", "TypeError",
                                                          "FileNotFoundError", "ImportError"):
        return "error", proc
    return "traceback", proc


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--json", default=None)
    p.add_argument("--only", default="cli,api,reader")
    args = p.parse_args(argv)
    families = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = make_inputs(d)
        inputs_before = {k: sha(v) for k, v in files.items()}
        cases = []
        if "cli" in families:
            cases += cli_cases(files, d)
        if "api" in families:
            cases += api_cases(d)
        if "reader" in families:
            cases += reader_cases(files, d)
        counts: dict[str, int] = {}
        bad = []
        for case in cases:
            outcome, proc = run_case(case, args.timeout, files, inputs_before)
            counts[outcome] = counts.get(outcome, 0) + 1
            if outcome in ("traceback", "silent", "lost", "hang"):
                tail = "" if proc is None else (proc.stderr or proc.stdout).strip()[-300:]
                bad.append({"case": case["name"], "family": case["family"],
                            "outcome": outcome, "tail": tail})
        print(f"{len(cases)} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for b in bad:
            print(f"  {b['outcome']:9s} {b['family']:6s} {b['case']}: {b['tail'][-160:]!r}")
        if args.json:
            Path(args.json).write_text(json.dumps({"counts": counts, "bad": bad}, indent=1))
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
