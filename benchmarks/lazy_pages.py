"""Peak memory of fixed-H NNLS on a lazy stack stored one channel per chunk.

napari opens a large TIFF lazily, one page (one channel) per dask chunk, and a zarr
store written plane by plane is chunked the same way.  Each analysis block needs
whole spectra, so the spectral chunks are merged; before 2026-12-07 that made one
block of the whole stack, held several times over.  Each case runs in a fresh
process (``resource.getrusage``'s peak resident size, the interpreter and imports
included), on a uint16 stack of ``--channels`` x ``--rows`` x ``--cols`` (default
32 x 4096 x 1024: 256 MiB), chunked one channel per chunk; the floor is the same
process doing only the imports and building the (lazy) stack.

Usage::

    python benchmarks/lazy_pages.py [--channels 32] [--rows 4096] [--cols 1024]
                                    [--chunk-size 128MiB]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, warnings
import dask, dask.array as da
import numpy as np
from napari_unmix.core import AnalysisConfig, ComponentSpec, Spectrum, run_analysis
c, y, x, chunk_size, run = json.loads(sys.argv[1])
k = 4
rng = np.random.default_rng(0)
H = rng.uniform(0.2, 1.0, (k, c))
def page(block_id=None):   # one channel: a lazy page, made when read
    i = block_id[0]
    r = np.random.default_rng(i)
    return r.integers(0, 4000, (1, y, x), dtype=np.uint16)
stack = da.map_blocks(page, dtype=np.uint16, chunks=((1,) * c, (y,), (x,)))
if run:
    cfg = AnalysisConfig(mode="nnls", components=[
        ComponentSpec(f"c{j}", h_source=Spectrum(H[j])) for j in range(k)])
    with dask.config.set({"array.chunk-size": chunk_size}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_analysis(stack, cfg, spectral_axis=0)
        np.asarray(res.W[:1])
        blocks = res.summary.extra["chunked"]["n_blocks"]
else:
    blocks = 0
print(json.dumps({"peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "blocks": blocks}))
"""


def measure(args, run: bool) -> dict:
    spec = json.dumps([args.channels, args.rows, args.cols, args.chunk_size, run])
    out = subprocess.run([sys.executable, "-c", CHILD, spec], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--chunk-size", default="128MiB", help="dask's array.chunk-size")
    args = p.parse_args(argv)
    stack_mib = args.channels * args.rows * args.cols * 2 / 2**20
    floor = measure(args, run=False)
    peak = measure(args, run=True)
    extra = (peak["peak_kib"] - floor["peak_kib"]) / 1024
    print(f"uint16 stack {args.channels} x {args.rows} x {args.cols} = {stack_mib:.0f} MiB, "
          f"one channel per chunk, array.chunk-size {args.chunk_size}")
    print(f"  imports and lazy stack only: peak {floor['peak_kib'] / 2**20:.2f} GiB")
    print(f"  fixed-H NNLS (k=4):          peak {peak['peak_kib'] / 2**20:.2f} GiB, "
          f"{extra:.0f} MiB above the floor = {extra / stack_mib:.2f} x the stack, "
          f"{peak['blocks']} blocks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
