"""Where the searches run: this process, a dask cluster, or HTCondor jobs.

``ewpolar optimize`` and ``ewpolar select-inputs`` take the executors of
``ewpolar run``: ``--executor dask --workers N`` starts a LocalCluster
(:func:`ewpolar.runner.local.local_cluster`: loopback only, TLS with temporary
credentials), ``--executor dask --scheduler ADDRESS`` (with the ``--tls-*``
options) connects to a running scheduler, and ``--executor condor`` starts
HTCondor dask workers from the config's ``condor`` settings
(:func:`ewpolar.runner.run.condor_cluster`). :func:`search_client` yields the
dask client (None for ``local``: everything in this process).

Hyperparameter trials run as dask tasks that share one Optuna study in a
storage every worker reaches (an SQLite or journal file: on a shared file
system for remote workers); the cross-validations of an input-selection step
run as dask tasks whose results come back to this process
(:func:`client_mapper`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ewpolar.core.config import CondorSettings
from ewpolar.core.errors import InputError

__all__ = ["SEARCH_EXECUTORS", "Mapper", "client_mapper", "n_workers", "search_client"]

log = logging.getLogger(__name__)

#: executors of ``optimize`` and ``select-inputs``
SEARCH_EXECUTORS = ("local", "dask", "condor")

#: ``mapper(function, items) -> [function(item) for item in items]``, possibly in parallel
Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]


@contextmanager
def search_client(executor: str, *, workers: int = 1, scheduler: str | None = None,
                  security: Any = None, condor: CondorSettings | None = None
                  ) -> Iterator[Any | None]:
    """The dask client of a search (None for ``local``), closed with its cluster on exit.

    Raises:
        InputError: an unknown executor, a scheduler that cannot be reached, or
            ``--scheduler`` without ``--executor dask``.
    """
    if executor not in SEARCH_EXECUTORS:
        raise InputError(f"--executor {executor}: choose from {', '.join(SEARCH_EXECUTORS)}")
    if scheduler and executor != "dask":
        raise InputError("--scheduler needs --executor dask")
    if executor == "local":
        yield None
        return
    from distributed import Client

    cluster = None
    if executor == "dask" and scheduler:
        try:
            client = Client(scheduler, timeout="20s", security=security)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect: {exc}") from None
    elif executor == "dask":
        from ewpolar.runner.local import local_cluster

        cluster = local_cluster(workers)
        client = Client(cluster)
    else:
        from ewpolar.runner.run import scaled_condor_cluster

        cluster = scaled_condor_cluster(condor or CondorSettings())
        client = Client(cluster)
    log.info("search on %s (%d workers)", client.scheduler.address, n_workers(client))
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def n_workers(client: Any) -> int:
    """Workers of the client's cluster now (at least 1, for a cluster still starting)."""
    return max(1, len(client.scheduler_info().get("workers", {})))


def client_mapper(client: Any | None) -> Mapper:
    """A mapper running each call as a dask task of ``client`` (in order), or here without one."""
    if client is None:
        return lambda function, items: [function(item) for item in items]

    def mapper(function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        futures = client.map(function, list(items), pure=False)
        return client.gather(futures)

    return mapper
