"""Every core: pixel blocks on a thread pool, with ``n_jobs`` as scikit-learn means it.

The numpy solvers and PCA split the pixels into blocks whose size depends on the
data alone (never on ``n_jobs``), hand the blocks to a pool of worker threads and
combine what the blocks return *in block order*: a block's rows of ``W`` are its
own, and a sum over pixels (``W^T X``, ``W^T W``, a covariance, a squared error) is
the sum of the blocks' shares taken one after another.  So the result is
bit-identical whatever ``n_jobs`` is (``tests/core/test_parallel.py``).

Threads, not processes: numpy releases the GIL inside its ufunc loops and BLAS
calls, so the workers run at the same time without copying ``X``.  While a pool
works, BLAS is held to one thread (``threadpoolctl``): the products are per block
and thin (k columns), and a BLAS that spawned its own threads inside every worker
would only oversubscribe the cores.  BLAS is held to one thread for ``n_jobs=1``
too, so that every ``n_jobs`` runs the same kernels.

``n_jobs``
    ``None`` (the default): the cores this process may use
    (``os.sched_getaffinity``; ``os.cpu_count()`` where that does not exist);
    ``-1``: all of them too (scikit-learn's "all processors", counted as joblib
    counts them, by the affinity); a positive integer: that many workers.  ``0``
    and other negative values are refused: scikit-learn's ``-2`` ("all but one") is
    not supported, say how many workers instead.  Fewer workers than asked run when
    there are fewer blocks.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from ._validation import is_whole_number

__all__ = ["Workers", "available_cores", "check_n_jobs", "resolve_n_jobs", "single_threaded"]


def available_cores() -> int:
    """The number of cores this process may run on (its CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def check_n_jobs(n_jobs, name: str = "n_jobs"):
    """``n_jobs`` if it is ``None``, ``-1`` or a positive integer; a ``ValueError`` else.

    A float with an integer value (``2.0``, from JSON) is accepted as that integer.
    """
    if n_jobs is None:
        return None
    if not is_whole_number(n_jobs):
        raise ValueError(f"{name} must be a whole number (the worker threads), -1 or None "
                         f"(every core this process may use), got {n_jobs!r}.")
    value = int(n_jobs)
    if value == 0:
        raise ValueError(f"{name}=0 would run no worker; give a positive number of worker "
                         "threads, or -1 / None for every core this process may use.")
    if value < -1:
        raise ValueError(f"{name}={value} is not supported: of the negative values only -1 "
                         "(every core this process may use) is; give the number of worker "
                         f"threads instead (this process may use {available_cores()} "
                         "core(s)).")
    return value


def resolve_n_jobs(n_jobs=None) -> int:
    """The number of workers ``n_jobs`` asks for (module documentation), at least 1."""
    n_jobs = check_n_jobs(n_jobs)
    if n_jobs is None or n_jobs == -1:
        return available_cores()
    return n_jobs


_lock = threading.Lock()
_state = {"depth": 0, "limits": None, "torch_depth": 0, "torch_before": None}


def _blas_limits():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency of scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def single_threaded(torch_too: bool = False):
    """Hold BLAS (and, with ``torch_too``, torch's CPU threads) to one thread.

    Re-entrant and cheap when nested: only the outermost block sets the limit
    (``threadpoolctl`` takes about a millisecond to find the libraries) and only it
    sets it back, so a solver called inside another's workers adds nothing.  The
    limits are global to the process, as BLAS's and torch's thread counts are.
    """
    with _lock:
        _state["depth"] += 1
        if _state["depth"] == 1:
            limits = _blas_limits()
            limits.__enter__()
            _state["limits"] = limits
        torch = None
        if torch_too:
            from .device import get_torch

            torch = get_torch()
            if torch is not None:
                _state["torch_depth"] += 1
                if _state["torch_depth"] == 1:
                    _state["torch_before"] = torch.get_num_threads()
                    if _state["torch_before"] != 1:
                        torch.set_num_threads(1)
    try:
        yield
    finally:
        with _lock:
            if torch is not None:
                _state["torch_depth"] -= 1
                if _state["torch_depth"] == 0 and _state["torch_before"] not in (None, 1):
                    torch.set_num_threads(_state["torch_before"])
            _state["depth"] -= 1
            if _state["depth"] == 0:
                limits, _state["limits"] = _state["limits"], None
                limits.__exit__(None, None, None)


class Workers:
    """A pool of worker threads for one run, BLAS at one thread while it is open.

    Use it as a context manager.  :meth:`map` calls a function on every item (a
    block) and returns the results in the order of the items, whichever thread
    computed them; with one worker everything runs in the calling thread.

    Parameters
    ----------
    n_jobs : int or None
        Module documentation.
    n_tasks : int, optional
        The most items one :meth:`map` gets: no more workers than that are started.
    torch_too : bool
        Also hold torch's CPU threads to one (workers that call torch on the CPU).

    Attributes
    ----------
    n : int
        The workers that run (the ``n_jobs`` a summary records).
    requested : int or None
        The ``n_jobs`` asked for (what a result's params record).
    """

    def __init__(self, n_jobs=None, n_tasks: int | None = None, *, torch_too: bool = False):
        n = resolve_n_jobs(n_jobs)
        self.requested = check_n_jobs(n_jobs)
        if n_tasks is not None:
            n = max(1, min(n, int(n_tasks)))
        self.n = n
        self._torch_too = torch_too
        self._pool = None
        self._limits = None
        self._local = threading.local()

    def __enter__(self) -> Workers:
        self._limits = single_threaded(self._torch_too)
        self._limits.__enter__()
        if self.n > 1:
            self._pool = ThreadPoolExecutor(self.n, thread_name_prefix="napari-unmix")
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._limits.__exit__(*exc)
        return False

    def map(self, fn, items) -> list:
        """``[fn(item) for item in items]``, on the workers; results in item order."""
        items = list(items)
        if self._pool is None or len(items) < 2:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def local(self, key: str, factory):
        """A per-thread object (a scratch buffer): ``factory()`` on first use in a thread."""
        store = self._local.__dict__
        if key not in store:
            store[key] = factory()
        return store[key]
