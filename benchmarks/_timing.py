"""Timing helper shared by the benchmarks."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["median_time"]


def median_time(fn, repeats, clock=time.perf_counter):
    """Median over ``repeats`` calls of ``fn()`` of the time ``clock`` measures."""
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return float(np.median(times))
