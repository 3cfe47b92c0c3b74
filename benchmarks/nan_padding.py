"""Real scenes with a frame of NaN, as registration or stitching pads them.

Samson and Jasper Ridge get a frame of NaN pixels (``--pad``, default 6) around the
image. Seeded NNMF from 2-px disc ROIs then runs twice through ``run_analysis``:
with ``nan_policy="omit"`` on the padded cube, and with the default policy on the
unpadded cube, which holds the same pixels in the same order. The script prints how
many pixels were left out, whether the spectra and maps are identical, the mean
spectral angle to the published endmembers of both runs, and the default policy's
refusal of the padded cube. Data: ``../shared/data`` next to the repository.

Usage::

    python benchmarks/nan_padding.py [--pad 6]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _scenes import SCENES, disc_rois, load_scene

from napari_unmix.core import AnalysisConfig, ComponentSpec, RoiMask, run_analysis
from napari_unmix.core.metrics import mean_spectral_angle


def _config(names, rois, policy):
    return AnalysisConfig(mode="seeded-nmf", random_state=0, nan_policy=policy,
                          components=[ComponentSpec(n, h_source=RoiMask(r))
                                      for n, r in zip(names, rois, strict=True)])


def scene_row(name: str, pad: int) -> str:
    cube, M, A, names = load_scene(name)
    shape = cube.shape[:2]
    rois = disc_rois(A, shape)
    padded = np.full((shape[0] + 2 * pad, shape[1] + 2 * pad, cube.shape[2]), np.nan,
                     dtype=cube.dtype)
    padded[pad:-pad, pad:-pad] = cube
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # drift notes: the same for both runs
        t0 = time.perf_counter()
        plain = run_analysis(cube, _config(names, rois, "raise"), spectral_axis=-1)
        t1 = time.perf_counter()
        omit = run_analysis(padded, _config(names, [np.pad(r, pad) for r in rois], "omit"),
                            spectral_axis=-1)
        t2 = time.perf_counter()
    try:
        run_analysis(padded, _config(names, [np.pad(r, pad) for r in rois], "raise"),
                     spectral_axis=-1)
        refused = "accepted (!)"
    except ValueError as exc:
        refused = str(exc).split(".")[0]
    left_out = omit.summary.preprocessing[0]["omitted_pixels"]
    same = np.array_equal(plain.H, omit.H) and np.array_equal(plain.W, omit.W)
    return (f"| {name} | {padded.shape[0]} x {padded.shape[1]} | {left_out} | "
            f"{'yes' if same else 'NO'} | {mean_spectral_angle(M, plain.H):.4f} | "
            f"{mean_spectral_angle(M, omit.H):.4f} | {t1 - t0:.2f} / {t2 - t1:.2f} | "
            f"{refused} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pad", type=int, default=6, help="NaN frame width in pixels")
    args = parser.parse_args(argv)
    print("| scene | padded size | pixels left out | W, H identical | SAD unpadded | "
          "SAD padded, omit | time s (unpadded / omit) | default policy |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | --- |")
    for name in SCENES:
        try:
            print(scene_row(name, args.pad))
        except FileNotFoundError as exc:
            print(f"| {name} | skipped: {exc} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
