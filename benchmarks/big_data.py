"""Beyond one machine (issue 12): a >= 4 GiB zarr cube through the chunked core, a local
cluster and the CLI, with the peak memory of every step.

Builds its own cube in a temporary folder (``--dir`` keeps and reuses it): an OME-Zarr
image of 64 x 4096 x 4096 float32 (4 GiB; ``--size N`` makes it 64 x N x N), chunks
64 x 512 x 512, synthetic smooth abundances of k = 4 Gaussian spectra plus 0.5 %
noise, written block by block (nothing of its size in memory), and ``refs.csv`` with
the 4 spectra.  Then every step runs in a subprocess of its own while this process
samples the resident memory of that subprocess and all its children (the workers of
a local cluster included) every 50 ms:

``nnls``      fixed-H NNLS of the cube with W written to a zarr store (target: peak
              <= 1 GiB)
``tiles``     sampled 512 x 512 tiles of that store against the in-memory NNLS of the
              same pixels (target: identical)
``nmf``       random NNMF of the cube, ``--nmf-iter`` iterations (target: <= 1.5 GiB)
``nmf-small`` random NNMF of a cube small enough for memory (64 x N/4 x N/4), in
              memory and chunked from the same seed (target: relative errors within
              0.5 % of each other)
``cluster``   NNLS and 20 NNMF iterations of a 512-row slab on a LocalCluster of 2
              worker processes against the threaded scheduler (target: same numbers)
``pickle``    the pickled dask graphs of the zarr input and of a 4 GiB TIFF (a sparse
              file) (target: < 1 MB each)
``series``    the cube as a series of 8 planes (64 x N/8 x N each), shared given basis,
              the maps written plane by plane to a zarr array (``maps_out``), against
              the same run holding the maps in memory (target: the peak of the
              streamed run below the in-memory one, by about the maps' size)
``cli``       ``napari-unmix run cube.ome.zarr --mode nnls --spectra refs.csv
              --scheduler local --out-format ome-zarr --out maps.ome.zarr`` (target:
              works; the output opens with its pixel sizes)

Prints a table of targets and verdicts and writes ``big_data.json`` (``--json``).
Needs ``napari-unmix[distributed]`` and psutil.  Check ``df -h`` first: the full run
writes about 9 GB (the cube, W, the CLI's maps, a sparse TIFF).

    python benchmarks/big_data.py                 # the 4 GiB cube (heavy: about 30 min)
    python benchmarks/big_data.py --size 1024     # 256 MiB, a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GIB = 1 << 30
K, C, CHUNK = 4, 64, 512
PIXEL = ((0.25, 0.25), ("um", "um"))
TARGETS = {"nnls": "peak <= 1 GiB", "tiles": "identical", "nmf": "peak <= 1.5 GiB",
           "nmf-small": "rel. errors within 0.5 %", "cluster": "same numbers",
           "pickle": "< 1 MB", "series-memory": "(the baseline of series)",
           "series": "maps to disk, lower peak",
           "cli": "works, pixel sizes kept"}


def spectra():
    wn = np.linspace(2800.0, 3100.0, C)
    centres, widths = (2850.0, 2885.0, 2935.0, 3010.0), (18.0, 25.0, 30.0, 45.0)
    H = np.stack([np.exp(-0.5 * ((wn - c) / w) ** 2) for c, w in zip(centres, widths,
                                                                       strict=True)])
    return wn, (H + 0.02).astype(np.float32)


def _block(block_info=None):
    """One 64 x 512 x 512 block of the cube, from its position alone (seeded by it)."""
    loc = block_info[None]["array-location"]
    (y0, y1), (x0, x1) = loc[1], loc[2]
    yy, xx = np.meshgrid(np.arange(y0, y1, dtype=np.float32),
                         np.arange(x0, x1, dtype=np.float32), indexing="ij")
    phases = ((0.011, 0.007, 0.0), (0.005, 0.013, 1.0), (0.017, 0.003, 2.0),
              (0.002, 0.002, 3.0))
    A = np.stack([0.55 + 0.45 * np.sin(a * yy + b * xx + p) for a, b, p in phases])
    _, H = spectra()
    cube = np.tensordot(H.T, A, axes=1)
    rng = np.random.default_rng((int(y0), int(x0)))
    cube += rng.normal(0.0, 0.005 * float(cube.max()), cube.shape).astype(np.float32)
    return np.maximum(cube, 0.0).astype(np.float32)


def build(d: Path, size: int, name="cube.ome.zarr") -> Path:
    import dask.array as da

    from napari_unmix.io import write_spectra_csv
    from napari_unmix.io.ome_zarr_out import write_stack_ome_zarr

    path = d / name
    if path.exists():
        return path
    wn, H = spectra()
    chunk = min(CHUNK, size)
    cube = da.map_blocks(_block, dtype=np.float32, chunks=((C,), (chunk,) * (size // chunk),
                                                            (chunk,) * (size // chunk)))
    t0 = time.perf_counter()
    write_stack_ome_zarr(path, cube, spectral_values=wn, spectral_unit="cm^-1",
                         pixel_size=PIXEL, chunks=(C, chunk, chunk))
    write_spectra_csv(d / "refs.csv", H, wn, ["A", "B", "C", "D"], "cm^-1")
    print(f"built {path} ({cube.nbytes / GIB:.2f} GiB) in {time.perf_counter() - t0:.0f} s",
          flush=True)
    return path


def _matrix(path):
    """The cube as a lazy pixel matrix (core.chunked) with one 512 x 512 tile per block
    of rows, and the layout of those rows (what run_analysis reads a chunked stack as)."""
    from napari_unmix.core.chunked import block_pixel_matrix
    from napari_unmix.io import open_stack

    stack = open_stack(path, lazy=True)
    return block_pixel_matrix(stack.data, 0)


# -- the steps (run in a subprocess each: python big_data.py --task NAME) ------------

def task_nnls(d: Path, args) -> dict:
    import dask.array as da
    import zarr

    import napari_unmix.core as uc
    from napari_unmix.core.chunked import rows_to_maps

    X, layout = _matrix(d / "cube.ome.zarr")
    _, H = spectra()
    t0 = time.perf_counter()
    res = uc.nnls(X, H)
    target = zarr.create_array(str(d / "W.zarr"), shape=(K, *layout.spatial_shape),
                               dtype="f4", chunks=(1, CHUNK, CHUNK), overwrite=True)
    da.store(rows_to_maps(res.W, layout).rechunk(target.chunks), target)
    return {"seconds": time.perf_counter() - t0, "lazy_W": hasattr(res.W, "dask")}


def task_tiles(d: Path, args) -> dict:
    import zarr

    import napari_unmix.core as uc
    from napari_unmix.io import open_stack

    stack = open_stack(d / "cube.ome.zarr", lazy=True)
    stored = zarr.open_array(str(d / "W.zarr"), mode="r")
    _, H = spectra()
    n = args.size // CHUNK
    rng = np.random.default_rng(0)
    worst = 0.0
    tiles = [(0, 0), (n - 1, n - 1), *map(tuple, rng.integers(0, n, (2, 2)))]
    for ty, tx in tiles:
        ys, xs = slice(ty * CHUNK, (ty + 1) * CHUNK), slice(tx * CHUNK, (tx + 1) * CHUNK)
        tile = np.asarray(stack.data[:, ys, xs])
        res = uc.nnls(tile.reshape(C, -1).T, H)
        mine = np.asarray(res.W).T.reshape(K, CHUNK, CHUNK)
        worst = max(worst, float(np.max(np.abs(mine - stored[:, ys, xs]))))
    return {"tiles": [list(map(int, t)) for t in tiles], "max_abs_diff": worst,
            "identical": worst == 0.0}


def task_nmf(d: Path, args) -> dict:
    import napari_unmix.core as uc

    X, _ = _matrix(d / "cube.ome.zarr")
    t0 = time.perf_counter()
    res = uc.nmf(X, K, random_state=0, max_iter=args.nmf_iter, tol=0.0)
    return {"seconds": time.perf_counter() - t0, "n_iter": int(res.n_iter),
            "relative_error": float(res.summary.relative_error), "backend": res.backend,
            "lazy_W": hasattr(res.W, "dask")}


def task_nmf_small(d: Path, args) -> dict:
    import napari_unmix.core as uc

    path = build(d, max(CHUNK, args.size // 4), name="small.ome.zarr")
    X, _ = _matrix(path)
    out = {}
    for how, data in (("chunked", X), ("in_memory", np.asarray(X))):
        t0 = time.perf_counter()
        res = uc.nmf(data, K, random_state=0, max_iter=300)
        out[how] = {"seconds": time.perf_counter() - t0, "n_iter": int(res.n_iter),
                    "relative_error": float(res.summary.relative_error),
                    "backend": res.backend, "lazy_W": hasattr(res.W, "dask")}
    a, b = out["chunked"]["relative_error"], out["in_memory"]["relative_error"]
    out["error_gap"] = abs(a - b) / b
    return out


def task_cluster(d: Path, args) -> dict:
    import dask
    from distributed import Client, LocalCluster

    import napari_unmix.core as uc

    X, _ = _matrix(d / "cube.ome.zarr")
    slab = X[: CHUNK * args.size]  # 512 rows of the image
    _, H = spectra()

    def fit():
        w = np.asarray(uc.nnls(slab, H).W)
        m = uc.nmf(slab, K, random_state=0, max_iter=20, tol=0.0)
        return w, np.asarray(m.H), float(m.summary.relative_error)

    with dask.config.set(scheduler="threads"):
        threaded = fit()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        t0 = time.perf_counter()
        distributed = fit()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "W_max_abs_diff": float(np.max(np.abs(threaded[0] -
                                                                      distributed[0]))),
            "H_max_abs_diff": float(np.max(np.abs(threaded[1] - distributed[1]))),
            "rel_error": [threaded[2], distributed[2]],
            "same": bool(np.array_equal(threaded[0], distributed[0])
                         and np.allclose(threaded[1], distributed[1], rtol=1e-5))}


def task_pickle(d: Path, args) -> dict:
    import pickle

    import tifffile

    from napari_unmix.io import open_stack

    tif = d / "cube.tif"
    if not tif.exists():  # the same declared size, a sparse file: only the header written
        mm = tifffile.memmap(str(tif), shape=(C, args.size, args.size), dtype="float32",
                             imagej=True, metadata={"axes": "CYX"})
        del mm
    out = {}
    for name in ("cube.ome.zarr", "cube.tif"):
        stack = open_stack(d / name, lazy=True)
        out[name] = {"bytes": len(pickle.dumps(stack.data.__dask_graph__())),
                     "data_GiB": stack.data.nbytes / GIB}
    return out


def _series(d: Path, size: int):
    import dask.array as da

    from napari_unmix.io import open_stack

    cube = open_stack(d / "cube.ome.zarr", lazy=True).data
    h = size // 8
    return da.stack([cube[:, i * h:(i + 1) * h] for i in range(8)])   # (8, C, h, N)


def task_series(d: Path, args) -> dict:
    from napari_unmix.core.series import unmix_series

    _, H = spectra()
    out = d / "series_maps.zarr"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = unmix_series(_series(d, args.size), H=H, maps_out=out)
    return {"seconds": time.perf_counter() - t0, "maps_GiB": res.maps.nbytes / GIB,
            "on_disk": type(res.maps).__module__.startswith("zarr")}


def task_series_memory(d: Path, args) -> dict:
    from napari_unmix.core.series import unmix_series

    _, H = spectra()
    t0 = time.perf_counter()
    res = unmix_series(_series(d, args.size), H=H)
    return {"seconds": time.perf_counter() - t0, "maps_GiB": res.maps.nbytes / GIB}


def task_cli(d: Path, args) -> dict:
    from napari_unmix.io.zarr_stacks import import_ome_zarr

    out = d / "maps.ome.zarr"
    cmd = [sys.executable, "-m", "napari_unmix.cli", "run", str(d / "cube.ome.zarr"),
           "--mode", "nnls", "--spectra", str(d / "refs.csv"), "--scheduler", "local",
           "--out-format", "ome-zarr", "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode:
        return {"ok": False, "stderr": run.stderr[-2000:]}
    ome_io, ome_reader, _, _ = import_ome_zarr()
    node = next(iter(ome_reader.Reader(ome_io.parse_url(str(out), mode="r"))()))
    scale = node.metadata["coordinateTransformations"][0][0]["scale"]
    return {"ok": True, "seconds": seconds, "levels": len(node.data),
            "shape": list(node.data[0].shape), "scale": scale,
            "pixel_sizes_kept": scale[1:] == list(PIXEL[0])}


TASKS = {"nnls": task_nnls, "tiles": task_tiles, "nmf": task_nmf, "nmf-small": task_nmf_small,
         "cluster": task_cluster, "pickle": task_pickle, "series-memory": task_series_memory,
         "series": task_series, "cli": task_cli}


# -- the parent: subprocesses, peak memory, the table -------------------------------

def measured(task, d: Path, args) -> dict:
    """Run ``task`` in a subprocess; its result and the peak RSS of its process tree."""
    import psutil

    cmd = [sys.executable, __file__, "--task", task, "--dir", str(d), "--size", str(args.size),
           "--nmf-iter", str(args.nmf_iter)]
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        total = 0
        try:
            for p in (proc, *proc.children(recursive=True)):
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    result = {"task": task, "peak_GiB": peak / GIB, "wall_s": time.perf_counter() - t0}
    try:
        result.update(json.loads(stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        result["error"] = (stderr or stdout).strip().splitlines()[-1:] or ["no output"]
    return result


def verdict(r: dict) -> tuple[str, str]:
    """(measured, verdict) of one step."""
    t = r["task"]
    if "error" in r:
        return f"error: {r['error'][0][:70]}", "FAIL"
    if t == "nnls":
        return f"{r['peak_GiB']:.2f} GiB, {r['seconds']:.0f} s", \
            "ok" if r["peak_GiB"] <= 1.0 else "MISS"
    if t == "tiles":
        return f"max |diff| {r['max_abs_diff']:.2g} on {len(r['tiles'])} tiles", \
            "ok" if r["identical"] else "MISS"
    if t == "nmf":
        return (f"{r['peak_GiB']:.2f} GiB, {r['seconds']:.0f} s, {r['n_iter']} it, "
                f"rel. err {r['relative_error']:.4g}"), "ok" if r["peak_GiB"] <= 1.5 else "MISS"
    if t == "nmf-small":
        return (f"{r['chunked']['relative_error']:.5g} vs {r['in_memory']['relative_error']:.5g}"
                f" ({100 * r['error_gap']:.3f} %)"), "ok" if r["error_gap"] <= 0.005 else "MISS"
    if t == "cluster":
        return (f"W diff {r['W_max_abs_diff']:.2g}, H diff {r['H_max_abs_diff']:.2g}, "
                f"{r['seconds']:.0f} s"), "ok" if r["same"] else "MISS"
    if t == "pickle":
        sizes = {k: v["bytes"] for k, v in r.items() if isinstance(v, dict)}
        return ", ".join(f"{k} {v / 1e3:.1f} kB" for k, v in sizes.items()), \
            "ok" if sizes and max(sizes.values()) < 1e6 else "MISS"
    if t == "series-memory":
        return f"{r['peak_GiB']:.2f} GiB, {r['seconds']:.0f} s (maps in memory)", "-"
    if t == "series":
        base = r.get("in_memory_peak_GiB")
        shown = f"{r['peak_GiB']:.2f} GiB, {r['seconds']:.0f} s, maps {r['maps_GiB']:.2f} GiB"
        if base is None:
            return shown, "ok" if r["on_disk"] else "MISS"
        return f"{shown} (in memory {base:.2f} GiB)", \
            "ok" if r["on_disk"] and r["peak_GiB"] < base else "MISS"
    if t == "cli":
        if not r.get("ok"):
            return f"failed: {r.get('stderr', '')[-70:]}", "FAIL"
        return f"{r['peak_GiB']:.2f} GiB, {r['seconds']:.0f} s, scale {r['scale']}", \
            "ok" if r["pixel_sizes_kept"] else "MISS"
    return "", ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=4096, help="image side N (default 4096: 4 GiB)")
    p.add_argument("--nmf-iter", type=int, default=20, help="NNMF iterations on the big cube")
    p.add_argument("--dir", default=None, help="work folder (kept; the cube is reused)")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated steps")
    p.add_argument("--json", default=None, help="where to write the results")
    p.add_argument("--task", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.size % CHUNK and args.size > CHUNK:
        p.error(f"--size must be a multiple of {CHUNK}")
    if args.task:  # a child: one step, its result as the last line of stdout
        print(json.dumps(TASKS[args.task](Path(args.dir), args)), flush=True)
        return 0
    d = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="unmix-big-"))
    d.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(d).free / GIB
    need = 2.3 * C * args.size * args.size * 4 / GIB
    print(f"work folder {d} ({free:.0f} GiB free, about {need:.1f} GiB needed)", flush=True)
    build(d, args.size)
    results = []
    for task in args.tasks.split(","):
        r = measured(task, d, args)
        if task == "series" and results and results[-1]["task"] == "series-memory":
            r["in_memory_peak_GiB"] = results[-1]["peak_GiB"]
        results.append(r)
        shown, ok = verdict(r)
        print(f"  {task:<13} {shown}  [{ok}]", flush=True)
    print(f"\ncube 64 x {args.size} x {args.size} float32 "
          f"({C * args.size ** 2 * 4 / GIB:.2f} GiB), chunks 64 x 512 x 512, k = {K}, "
          f"{os.cpu_count()} CPU(s)")
    print(f"{'step':<13} | {'target':<26} | {'measured':<60} | verdict")
    print("-" * 112)
    for r in results:
        shown, ok = verdict(r)
        print(f"{r['task']:<13} | {TARGETS[r['task']]:<26} | {shown:<60} | {ok}")
    out = Path(args.json) if args.json else d / "big_data.json"
    out.write_text(json.dumps({"size": args.size, "results": results}, indent=1))
    print(f"\nwrote {out}")
    if not args.dir:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
