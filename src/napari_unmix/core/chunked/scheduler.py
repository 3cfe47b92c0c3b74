"""Which arrays are dask arrays, and running their graphs with progress and cancel.

Nothing here imports dask until an array is one: the core imports, and every
in-memory path runs, without dask installed.

Schedulers
    dask's convention: when a ``dask.distributed`` Client is active (the default
    client of this process), the graphs run on its cluster; otherwise on dask's
    default (threaded) scheduler.  The core never creates a client.

Progress and cancel
    :func:`persist` computes collections and keeps their blocks (in this process,
    or on the cluster's workers), calling ``on_block(done, total)`` each time a block
    of the first collection finishes.  An exception raised by ``on_block``
    (:class:`~napari_unmix.core.progress.Cancelled` from a callback) stops the run
    between blocks: the local scheduler stops handing out tasks, a cluster's
    futures are cancelled.

One graph policy on a cluster
    :func:`persist` sends its graphs unoptimised (a layer that several outputs share
    runs once).  On a cluster every other computation of a run goes the same way
    (:func:`compute`): the scheduler keeps the keys of persisted and running graphs,
    and the same key sent once as a plain task and once fused by dask's optimiser
    is two different tasks under one name ("Detected different run_spec", which
    dask warns can end in failures and deadlocks).  The local scheduler holds
    nothing between calls, so there the graphs are optimised as usual.
"""

from __future__ import annotations

__all__ = ["active_client", "compute", "is_dask_array", "persist"]


def is_dask_array(x) -> bool:
    """Whether ``x`` is a ``dask.array.Array`` (checked without importing dask)."""
    cls = type(x)
    if not cls.__module__.startswith("dask."):
        return False
    import dask.array as da

    return isinstance(x, da.Array)


def active_client():
    """The active ``dask.distributed`` Client, or None (distributed absent or no client)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def compute(*collections):
    """``dask.compute(*collections)`` under the run's graph policy (see the module
    doc): unoptimised when a ``dask.distributed`` Client is active, as :func:`persist`
    sends its graphs.  Returns a tuple, like ``dask.compute``."""
    import dask

    return dask.compute(*collections, optimize_graph=active_client() is None)


def _keys(collection) -> set:
    from dask.core import flatten

    return set(flatten(collection.__dask_keys__()))


def persist(*collections, total: int = 0, on_block=None):
    """``dask.persist(*collections)`` with ``on_block(done, total)`` after every finished
    block of the first collection (one task per block: a ``map_blocks`` over the row
    blocks of ``X``).

    Returns the persisted collections (a tuple, like ``dask.persist``).  The graph is
    not optimised: a layer that several outputs share (a block's fit and its
    statistics) runs once.
    """
    import dask

    if on_block is None:
        return dask.persist(*collections, optimize_graph=False)
    client = active_client()
    if client is not None:
        from distributed import as_completed, futures_of

        out = client.persist(list(collections), optimize_graph=False)
        done = 0
        try:
            for _ in as_completed(futures_of(out[0])):
                done += 1
                on_block(done, total)
        except BaseException:
            client.cancel(futures_of(out))
            raise
        return tuple(out)
    from dask.callbacks import Callback

    keys = _keys(collections[0])
    counter = {"done": 0}

    def posttask(key, result, dsk, state, worker_id):
        if key in keys:
            counter["done"] += 1
            on_block(counter["done"], total)

    with Callback(posttask=posttask):
        return dask.persist(*collections, optimize_graph=False)
