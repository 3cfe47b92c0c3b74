"""``--scheduler`` of ``napari-unmix run``: the dask.distributed client a run computes on.

* no ``--scheduler``: dask's default (threads in this process);
* ``local``: a :class:`distributed.LocalCluster` on this machine, one single-threaded
  worker process per core (at most :data:`LOCAL_WORKERS`), closed after the run;
* an address (``tcp://host:8786``, ``host:8786``): the running scheduler there, through
  :class:`distributed.Client`.

Only a chunked (dask) stack is computed on the client: zarr and OME-Zarr inputs.  A
stack read into memory (TIFF, numpy, slice folders) is computed in this process
whatever ``--scheduler`` says, so ``run`` starts no cluster for it and says so
(:func:`scheduler_for`); its ``done:`` line names where the blocks ran
(:func:`where_text`, the summary's ``chunked.scheduler``).

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

__all__ = ["LOCAL_OPTIONS", "LOCAL_WORKERS", "scheduler_client", "scheduler_for",
           "where_text"]

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


def scheduler_for(spec, *, lazy: bool, input_name: str, quiet=False):
    """``spec``, or None with a note when the input is not chunked (computed in this
    process: a cluster would do nothing)."""
    if spec is None or not str(spec).strip() or lazy:
        return spec
    note(f"--scheduler {str(spec).strip()} is not used: {input_name} is read into memory "
         "and computed in this process. --scheduler computes zarr and OME-Zarr inputs "
         "(read chunk by chunk) on the cluster.", quiet)
    return None


def where_text(client) -> str:
    """Where ``client`` computes: ``"a local cluster of N worker(s)"`` or ``"the
    scheduler at ADDRESS"`` (``"threads in this process"`` without a client)."""
    if client is None:
        return "threads in this process"
    cluster = getattr(client, "cluster", None)
    if cluster is not None and type(cluster).__name__ == "LocalCluster":
        return f"a local cluster of {len(cluster.workers)} worker(s)"
    return f"the scheduler at {client.scheduler.address}"


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
        else:
            try:
                client = stack.enter_context(distributed.Client(
                    spec, timeout=timeout, set_as_default=True))
            except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError ...
                raise CLIError(f"--scheduler {spec}: cannot reach a dask scheduler there "
                               f"({type(exc).__name__}: {exc}); start one (dask scheduler) "
                               "or give its address as tcp://HOST:PORT, or use --scheduler "
                               "local.") from None
        note(f"computing on {where_text(client)}.", quiet)
        with client.as_current():
            yield client
