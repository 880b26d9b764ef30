"""Where a set of independent tasks runs: in this process, in local processes, on a Dask cluster, or on a batch
queue (SLURM; PBS, SGE and LSF the same way) through dask-jobqueue.

:class:`ExecutorConfig` says where; :func:`run_tasks` runs ``fn(item)`` for every item there and returns the results
in the items' order, calling ``on_result(index, result)`` in this process as each one arrives (so the caller can
save it at once: a lost worker then costs only the tasks it held, which Dask runs again elsewhere). The tasks must
depend only on their item (their own seed, their own structure), so where they run does not change what they give.

The FEFF sites of :func:`specguide.simulate.feff.site_spectra`, the replicas of
:func:`specguide.simulate.lammps.melt_quench_replicas` and the density scan and seeds of
:func:`specguide.diffusion.inversion.invert` go through it. ``dask.distributed`` and ``dask-jobqueue`` are optional
(``pip install 'specguide[cluster]'``) and imported only when a Dask or queue executor is asked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from specguide.config import Config
from specguide.io import InputError

T = TypeVar("T")
R = TypeVar("R")

EXECUTOR_KINDS = ("local", "dask", "slurm", "pbs", "sge", "lsf")
# batch-queue executors: dask-jobqueue's cluster class and the command that submits its jobs
JOBQUEUE = {"slurm": ("SLURMCluster", "sbatch"), "pbs": ("PBSCluster", "qsub"), "sge": ("SGECluster", "qsub"),
            "lsf": ("LSFCluster", "bsub")}  # fmt: skip
CLUSTER_HINT = "pip install 'specguide[cluster]' (dask[distributed] and dask-jobqueue)"


@dataclass
class ExecutorConfig(Config):
    """Where independent tasks run (``config.json``'s ``"executor"``).

    ``kind``: ``"local"`` (this machine's processes; ``workers`` of them, 1 = in this process, None = the caller's
    default), ``"dask"`` (a running Dask scheduler at ``address``, e.g. ``tcp://10.0.0.5:8786``; without one a
    ``LocalCluster`` of ``workers`` single-threaded processes), or a batch queue ``"slurm"``, ``"pbs"``, ``"sge"``,
    ``"lsf"`` (a dask-jobqueue cluster that submits jobs until it has ``workers`` Dask workers; its settings are
    dask's ``jobqueue.<kind>`` configuration, e.g. ``~/.config/dask/jobqueue.yaml``, with ``options`` replacing
    any of them: ``cores``, ``memory``, ``walltime``, ``queue``, ``account``, ``job_extra_directives``, ...).
    """

    kind: str = "local"
    workers: int | None = None
    address: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in EXECUTOR_KINDS:
            raise InputError(f"--executor {self.kind!r}: use one of {', '.join(EXECUTOR_KINDS)}")
        if self.workers is not None and (isinstance(self.workers, bool) or int(self.workers) < 1):
            raise InputError(f"--executor-workers {self.workers!r}: give a positive number of workers")
        if self.address is not None and self.kind != "dask":
            raise InputError(f"--scheduler {self.address}: a scheduler address needs --executor dask, not {self.kind}")

    @classmethod
    def from_cli(cls, kind: str = "local", scheduler: str | None = None, workers: int | None = None) -> ExecutorConfig:
        """The options ``--executor KIND``, ``--scheduler ADDRESS`` (implies ``dask``), ``--executor-workers N``."""
        if scheduler is not None and kind == "local":
            kind = "dask"
        return cls(kind=kind, workers=workers, address=scheduler)

    @property
    def distributed(self) -> bool:
        """Whether the tasks leave this machine's process pool (they then must pickle with cloudpickle)."""
        return self.kind != "local"


LOCAL = ExecutorConfig()


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    executor: ExecutorConfig | None = None,
    *,
    default_workers: int = 1,
    start_method: str | None = None,
    on_result: Callable[[int, R], None] | None = None,
    watch: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> list[R]:
    """``[fn(item) for item in items]``, run where ``executor`` says (default: in this process, one by one).

    Local: ``executor.workers`` processes (None: ``default_workers``; 1 or a single item: in this process) of the
    ``start_method`` (``"fork"`` where the platform has it, else ``"spawn"``; ``fn`` and the items must pickle).
    Dask and queues: one task per item (``fn`` and the items must pickle with cloudpickle); a task whose worker is
    lost is run again on another. ``on_result(index, result)`` runs in this process as each result arrives (in the
    order they finish); an exception of any task is raised here and the tasks not yet started are cancelled.
    ``watch()``: a context entered once every task is submitted and left when all are done (a progress bar: its
    thread then starts after the local pool's processes are forked).
    """
    items = list(items)
    executor = executor or LOCAL
    results: list[Any] = [None] * len(items)

    def arrived(index: int, result: R) -> None:
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    watching = watch or contextlib.nullcontext
    if not items:
        return []
    if executor.kind == "local":
        n_workers = max(1, min(executor.workers or default_workers, len(items)))
        if n_workers == 1:
            with watching():
                for index, item in enumerate(items):
                    arrived(index, fn(item))
        else:
            _run_in_pool(fn, items, n_workers, start_method, arrived, watching)
        return results
    with dask_client(executor) as client:
        from distributed import as_completed

        futures = client.map(fn, items, pure=False)
        position = {future.key: index for index, future in enumerate(futures)}
        try:
            with watching():
                for future in as_completed(futures):
                    arrived(position[future.key], future.result())
        except BaseException:
            client.cancel(futures)
            raise
    return results


def _run_in_pool(fn, items: list, n_workers: int, start_method: str | None, arrived: Callable, watching) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if start_method is None:
        start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(n_workers, mp_context=mp.get_context(start_method)) as pool:
        futures = {pool.submit(fn, item): index for index, item in enumerate(items)}
        try:
            with watching():
                for future in as_completed(futures):
                    arrived(futures[future], future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise InputError(f"the Dask executor needs dask.distributed: {CLUSTER_HINT}") from None
    return distributed


def queue_cluster(executor: ExecutorConfig):
    """The dask-jobqueue cluster of a queue executor (``slurm``, ``pbs``, ``sge``, ``lsf``), with no jobs yet
    (``cluster.job_script()`` shows what it will submit; ``cluster.scale(n)`` submits them)."""
    name, _ = JOBQUEUE[executor.kind]
    _import_distributed()
    try:
        import dask_jobqueue
    except ImportError:
        raise InputError(f"--executor {executor.kind} needs dask-jobqueue: {CLUSTER_HINT}") from None
    return getattr(dask_jobqueue, name)(**executor.options)


@contextlib.contextmanager
def dask_client(executor: ExecutorConfig) -> Iterator[Any]:
    """A ``distributed.Client`` for ``executor`` (a Dask or queue kind); the cluster it starts (a ``LocalCluster``,
    or queue jobs) is shut down on exit, a scheduler given by address is left running."""
    distributed = _import_distributed()
    cluster = None
    if executor.kind == "dask" and executor.address:
        try:
            client = distributed.Client(executor.address)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {executor.address}: no Dask scheduler answers there ({exc}); start one "
                             "(dask scheduler) or check the address") from None  # fmt: skip
    else:
        if executor.kind == "dask":
            settings = dict(n_workers=executor.workers or os.cpu_count() or 1, processes=True, threads_per_worker=1,
                            dashboard_address=":0")  # fmt: skip  # any free port: 8787 may be taken
            cluster = distributed.LocalCluster(**(settings | executor.options))
        else:
            submit = JOBQUEUE[executor.kind][1]
            if shutil.which(submit) is None:
                raise InputError(f"--executor {executor.kind}: {submit} is not on PATH; run on the cluster's login "
                                 "node (see docs/cluster.md)")  # fmt: skip
            cluster = queue_cluster(executor)
            cluster.scale(n=executor.workers or 1)
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
