"""Screenshots of the dock's "Is my fit good?" section for the user guide (issue 15).

Run it headless under Xvfb::

    xvfb-run -a python scripts/screenshots_diagnostics.py --out docs/images

On the bundled sample, through the dock's own buttons, as a user does:

1. "How many components?": ``diag-k-curves.png``, the three curves with the
   suggested k marked (the figure of the "How many components?" dock, drawn
   ``--dpi-scale`` times finer);
2. "Stability" with 4 components over 10 random starts: ``diag-stability.png``, the
   section with its table;
3. random NNMF with one component too few (3) and the residual map:
   ``diag-residual.png``, the canvas showing the residual layer alone;
4. "Suggest components": ``diag-suggest.png``, the whole window with the suggested
   seed regions (Labels layer) over the stack, the rows made from them and the
   seeded NNMF run that followed.

BLAS runs single-threaded (as in ``screenshots.py``) so that the numbers are the same
on every machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import process_events, render_figure, save_png, trim, wait_for  # noqa: E402


def grab(widget, path: Path, max_kb: int) -> int:
    """A widget as it is drawn on screen, saved as PNG."""
    import numpy as np
    from qtpy.QtGui import QImage

    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits().asstring(stride * h) if hasattr(
        img.constBits(), "asstring") else bytes(img.constBits()), dtype=np.uint8)
    rgb = buf.reshape(h, stride)[:, : w * 3].reshape(h, w, 3)
    return save_png(rgb, path, max_kb)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("docs/images"), help="output folder")
    p.add_argument("--size", type=int, nargs=2, default=(1400, 900), metavar=("W", "H"))
    p.add_argument("--max-kb", type=int, default=280)
    p.add_argument("--dpi-scale", type=float, default=2.0)
    p.add_argument("--timeout", type=float, default=300.0, help="longest wait per job [s]")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import napari

    viewer = napari.Viewer(title="napari-unmix", show=True)
    viewer.window.set_geometry(0, 0, *args.size)
    image = viewer.open_sample("napari-unmix", "crs")[0]
    _, dock = viewer.window.add_plugin_dock_widget("napari-unmix", "Spectral unmixing")
    panel = dock.diagnostics
    panel.set_expanded(True)
    process_events()
    sizes = {}

    def finish(job, what):
        if job is None:
            raise RuntimeError(f"{what} was refused: {dock.status.text()}")
        t0 = time.perf_counter()
        wait_for(lambda: job.done, args.timeout, what)
        print(f"{what}: {time.perf_counter() - t0:.1f} s; {dock.status.text()}")

    # 1. how many components?
    finish(panel.how_many(), "How many components?")
    process_events(0.5)
    sizes["diag-k-curves.png"] = save_png(render_figure(panel.k_plot.figure, args.dpi_scale),
                                          args.out / "diag-k-curves.png", args.max_kb)

    # 2. stability of 4 components
    dock.form.n_components.value = 4
    finish(panel.check_stability(), "Stability")
    process_events(0.5)
    sizes["diag-stability.png"] = grab(panel, args.out / "diag-stability.png", args.max_kb)

    # 3. one component too few: the residual map shows what is missing
    f = dock.form
    f.mode.value = "nmf"
    f.n_components.value = 3
    f.random_state.value = "0"
    dock.history.residual.setChecked(True)
    finish(dock.run(), "random NNMF, k = 3")
    residual = viewer.layers["run 1 · residual"]
    for lyr in viewer.layers:
        lyr.visible = lyr is residual
    viewer.reset_view()
    process_events(1.0)
    sizes["diag-residual.png"] = save_png(trim(viewer.screenshot(canvas_only=True,
                                                                 flash=False)),
                                          args.out / "diag-residual.png", args.max_kb)

    # 4. suggest components: seed regions, rows, then the seeded run
    job = panel.suggest()
    finish(job, "Suggest components")
    wait_for(lambda: not dock.running and dock.result is not None
             and dock.result.mode == "seeded-nmf", args.timeout, "the seeded NNMF run")
    print(dock.summary.text())
    seeds = viewer.layers["suggested seeds"]
    for lyr in viewer.layers:
        lyr.visible = lyr in (image, seeds)
    seeds.opacity = 0.7
    viewer.layers.selection.active = seeds
    viewer.reset_view()
    from qtpy.QtWidgets import QScrollArea

    scroll = dock.findChild(QScrollArea)  # down to the rows made from the regions
    top = dock.components_box.mapTo(scroll.widget(), dock.components_box.rect().topLeft())
    scroll.verticalScrollBar().setValue(top.y() - 4)
    process_events(1.0)
    sizes["diag-suggest.png"] = save_png(viewer.screenshot(canvas_only=False, flash=False),
                                         args.out / "diag-suggest.png", args.max_kb)
    for name, size in sizes.items():
        print(f"wrote {args.out / name} ({size / 1024:.0f} KiB)")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
