"""``--scheduler`` of ``napari-unmix run``: the dask.distributed client a run computes on.

* no ``--scheduler``: dask's default (threads in this process);
* ``local``: a :class:`distributed.LocalCluster` on this machine, one single-threaded
  worker process per core (at most :data:`LOCAL_WORKERS`), closed after the run;
* an address (``tcp://host:8786``, ``host:8786``): the running scheduler there, through
  :class:`distributed.Client`.

The client is the active (default) one while the run computes and its outputs are
written: the core's dask graphs (chunked NNLS, NNMF, PCA; the lazy readers' tasks
reopen the files by path) run on its workers, as dask's convention has it.  Either
failure, distributed missing or a scheduler that cannot be reached, is one line that
names the flag.
"""

from __future__ import annotations

import contextlib
import os

from .console import CLIError, note

__all__ = ["LOCAL_OPTIONS", "LOCAL_WORKERS", "scheduler_client"]

#: The most worker processes ``--scheduler local`` starts.
LOCAL_WORKERS = 8
#: Options of the ``local`` cluster (tests set ``processes=False``: in-process workers).
LOCAL_OPTIONS: dict = {"processes": True, "threads_per_worker": 1,
                       "dashboard_address": None}


def _distributed():
    try:
        import distributed
    except ImportError:
        raise CLIError("--scheduler needs dask.distributed: pip install "
                       "'napari-unmix[distributed]' (or pip install distributed), or leave "
                       "--scheduler out to compute in this process.") from None
    return distributed


def _workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(LOCAL_WORKERS, n))


@contextlib.contextmanager
def scheduler_client(spec, *, quiet=False, timeout="10s"):
    """Yield the client of ``--scheduler spec`` (None without one), active as the default.

    Parameters
    ----------
    spec : str or None
        ``"local"``, a scheduler address, or None.
    quiet : bool, default False
        No note naming the cluster.
    timeout : str, default "10s"
        How long to wait for a remote scheduler.

    Yields
    ------
    distributed.Client or None

    Raises
    ------
    CLIError
        distributed is not installed, or the scheduler cannot be reached.
    """
    if spec is None or not str(spec).strip():
        yield None
        return
    distributed = _distributed()
    spec = str(spec).strip()
    with contextlib.ExitStack() as stack:
        if spec == "local":
            options = {"n_workers": _workers(), **LOCAL_OPTIONS}
            try:
                cluster = stack.enter_context(distributed.LocalCluster(**options))
            except Exception as exc:  # noqa: BLE001 - ports, spawn, resources ...
                raise CLIError(f"--scheduler local: the local cluster did not start "
                               f"({type(exc).__name__}: {exc}).") from None
            client = stack.enter_context(distributed.Client(cluster, set_as_default=True))
            where = f"a local cluster of {len(cluster.workers)} worker(s)"
        else:
            try:
                client = stack.enter_context(distributed.Client(
                    spec, timeout=timeout, set_as_default=True))
            except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError ...
                raise CLIError(f"--scheduler {spec}: cannot reach a dask scheduler there "
                               f"({type(exc).__name__}: {exc}); start one (dask scheduler) "
                               "or give its address as tcp://HOST:PORT, or use --scheduler "
                               "local.") from None
            where = f"the scheduler at {client.scheduler.address}"
        note(f"computing on {where}.", quiet)
        with client.as_current():
            yield client
