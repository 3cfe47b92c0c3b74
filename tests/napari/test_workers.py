"""Worker jobs (:func:`napari_unmix._napari.workers.start_job`): progress reaches the
GUI thread, the outcome is delivered once (value, error or cancellation), cancel is
quick, warnings are collected, and a detached job delivers nothing."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("napari")
pytestmark = pytest.mark.gui

from napari_unmix._napari.workers import start_job  # noqa: E402
from napari_unmix.core.nmf import nmf  # noqa: E402
from napari_unmix.core.progress import ProgressInfo  # noqa: E402

TIMEOUT_MS = 10_000


class _Collect:
    def __init__(self):
        self.progress, self.outcomes, self.threads = [], [], []

    def on_progress(self, info):
        self.threads.append(threading.get_ident())
        self.progress.append(info)

    def on_done(self, outcome):
        self.threads.append(threading.get_ident())
        self.outcomes.append(outcome)


def _start(qtbot, func):
    seen = _Collect()
    job = start_job(func, on_progress=seen.on_progress, on_done=seen.on_done)
    return job, seen


def test_progress_is_relayed_and_the_result_returned(qtbot):
    worker_threads = []

    def work(callback):
        worker_threads.append(threading.get_ident())
        for i in range(1, 4):
            assert callback(ProgressInfo("toy", i, 3, error=1.0 / i, fraction=i / 3)) is True
        return {"answer": 42}

    job, seen = _start(qtbot, work)
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(seen.progress) == 3, timeout=TIMEOUT_MS)
    assert [(p.stage, p.iteration, p.error) for p in seen.progress] == \
        [("toy", 1, 1.0), ("toy", 2, 0.5), ("toy", 3, 1.0 / 3)]
    assert len(seen.outcomes) == 1
    out = seen.outcomes[0]
    assert out.value == {"answer": 42} and not out.cancelled and out.error is None
    # the work ran in another thread; progress and outcome arrive in the GUI thread
    gui = threading.get_ident()
    assert worker_threads and worker_threads[0] != gui
    assert set(seen.threads) == {gui}


def test_an_exception_becomes_the_outcome_error(qtbot):
    def work(callback):
        raise ValueError("the data are negative")

    job, seen = _start(qtbot, work)
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    (out,) = seen.outcomes
    assert isinstance(out.error, ValueError) and str(out.error) == "the data are negative"
    assert out.value is None and not out.cancelled


def test_cancel_stops_a_core_run_within_a_second(qtbot):
    rng = np.random.default_rng(0)
    X = rng.random((400, 16))

    def work(callback):  # endless: fresh starts, each of 10 million iterations
        # (a single run may end by itself: tol=0 still stops where the error no
        # longer falls at all, which HALS can reach on this small problem)
        seed = 0
        while True:
            nmf(X, 3, solver="hals", backend="numpy", max_iter=10_000_000, tol=0.0,
                random_state=seed, callback=callback)
            seed += 1

    job, seen = _start(qtbot, work)
    qtbot.waitUntil(lambda: len(seen.progress) > 0, timeout=TIMEOUT_MS)
    t0 = time.perf_counter()
    job.cancel()
    assert job.cancel_requested
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert time.perf_counter() - t0 < 1.0
    (out,) = seen.outcomes
    assert out.cancelled and out.value is None and out.error is None


def test_warnings_are_collected_once_each(qtbot):
    def work(callback):
        for _ in range(3):
            warnings.warn("capped at max_iter=3", UserWarning, stacklevel=1)
        warnings.warn("lost precision", RuntimeWarning, stacklevel=1)
        return 1

    job, seen = _start(qtbot, work)
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    (out,) = seen.outcomes
    assert out.value == 1
    ours = [w for w in out.warnings if w[1] in ("capped at max_iter=3", "lost precision")]
    assert ours == [(UserWarning, "capped at max_iter=3"), (RuntimeWarning, "lost precision")]


def test_a_detached_job_is_cancelled_and_delivers_nothing(qtbot):
    started = threading.Event()

    def work(callback):
        started.set()
        while callback(ProgressInfo("toy", 0, 1)) is not False:
            time.sleep(0.005)
        return "stopped"

    job, seen = _start(qtbot, work)
    assert started.wait(TIMEOUT_MS / 1000)
    job.detach()
    assert job.detached and job.cancel_requested
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    n = len(seen.progress)
    qtbot.wait(50)  # queued progress reports, if any, would arrive now
    assert seen.outcomes == [] and len(seen.progress) == n


# -- an outcome shown over several passes of the event loop ---------------------------------
class _Passes:
    """Counts the passes of Qt's event loop (a repeating zero-interval timer fires
    once per pass)."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.count = 0
        self.timer = QTimer()
        self.timer.setInterval(0)
        self.timer.timeout.connect(self._beat)
        self.timer.start()

    def _beat(self):
        self.count += 1


def _steps(marks, jobs, passes, n=3, detach_at=None):
    """Steps that note the pass of the event loop they run in, and whether the job
    was done (it must not be before the last)."""
    for i in range(n):
        marks.append((f"step {i}", passes.count, bool(jobs) and jobs[0].done))
        if i == detach_at:
            jobs[0].detach()  # as when the dock is destroyed between two layers
        yield
    marks.append(("end", passes.count, False))


def _start_steps(**kwargs):
    marks, jobs, passes = [], [], _Passes()
    job = start_job(lambda callback: 1, on_progress=lambda info: None,
                    on_done=lambda outcome: _steps(marks, jobs, passes, **kwargs))
    jobs.append(job)
    return job, marks


def test_an_outcome_shown_in_steps_gives_the_event_loop_a_pass_between_them(qtbot):
    job, marks = _start_steps()
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert [m[0] for m in marks] == ["step 0", "step 1", "step 2", "end"]
    at = [m[1] for m in marks]
    assert at[0] < at[1] < at[2] < at[3], f"steps shared a pass of the event loop: {at}"
    assert not any(m[2] for m in marks), "the job was done before its last step"


def test_a_job_detached_between_steps_runs_no_more_of_them(qtbot):
    job, marks = _start_steps(n=5, detach_at=1)
    qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    qtbot.wait(50)
    assert [m[0] for m in marks] == ["step 0", "step 1"]  # no "end": closed


def test_a_step_that_raises_ends_the_job_and_reaches_qt(qtbot):
    def steps():
        yield
        raise RuntimeError("a layer could not be made")

    with qtbot.capture_exceptions() as caught:
        job = start_job(lambda callback: 1, on_progress=lambda info: None,
                        on_done=lambda outcome: steps())
        qtbot.waitUntil(lambda: job.done, timeout=TIMEOUT_MS)
    assert [str(exc) for _, exc, _ in caught] == ["a layer could not be made"]
