"""Where corpus tasks run: Dask's local threaded scheduler by default, a ``dask.distributed``
cluster when the user gives one (its address, or a ``Client``).

A job is a list of :class:`TaskSpec`: a top-level function, its arguments, and optionally
the index of an earlier task whose result it receives (a tracing task that continues a long
sequence needs the LSTM states where the previous task stopped). :func:`run_tasks` runs
them, calls ``on_done(index, result)`` on the calling thread as each one finishes (progress),
and polls ``should_stop()``: on the local scheduler the tasks that have not started return
at once; on a cluster the unfinished futures are cancelled.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...errors import LstmvizError, MissingDependencyError
from ._common import ShouldStop

LOCAL_NAMES = {"threads": "threads", "sync": "sync", "synchronous": "sync"}


class _Skipped:
    """Result of a task that did not run (stopped, or its predecessor did not run)."""

    def __repr__(self) -> str:
        return "<skipped>"


SKIPPED = _Skipped()


@dataclass
class TaskSpec:
    """One task: ``fn(*args, prev)`` where ``prev`` is the result of task ``after`` (or
    None)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    after: int | None = None
    key: str = ""


@dataclass
class Scheduler:
    """A resolved scheduler: ``kind`` is ``"threads"``, ``"sync"`` or ``"distributed"``."""

    kind: str
    client: Any = None
    owned: bool = False
    workers: int = 1
    _scattered: dict[int, Any] = field(default_factory=dict)

    @property
    def distributed(self) -> bool:
        return self.kind == "distributed"

    @property
    def label(self) -> str:
        if self.kind == "distributed":
            return f"dask.distributed {self.client.scheduler.address} ({self.workers} threads)"
        if self.kind == "sync":
            return "dask synchronous (1 thread)"
        return f"dask threads ({self.workers})"

    def share(self, obj: Any) -> Any:
        """``obj`` as tasks should receive it: itself locally, scattered once to every worker
        of a cluster (a model is sent once, not with every task)."""
        if not self.distributed:
            return obj
        key = id(obj)
        if key not in self._scattered:
            self._scattered[key] = self.client.scatter(obj, broadcast=True, hash=False)
        return self._scattered[key]

    def close(self) -> None:
        self._scattered.clear()
        if self.owned and self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()


def _is_client(obj: Any) -> bool:
    return hasattr(obj, "submit") and hasattr(obj, "scheduler_info") and hasattr(obj, "scatter")


@contextlib.contextmanager
def resolve(scheduler: Any, timeout: float = 10.0) -> Iterator[Scheduler]:
    """The :class:`Scheduler` for a ``scheduler`` argument.

    ``None`` or ``"threads"``: Dask's local threaded scheduler, one thread per core;
    ``"sync"``: one thread (debugging); an address (``"tcp://10.0.0.5:8786"``,
    ``"10.0.0.5:8786"``): a ``dask.distributed`` client connected for the job and closed
    after it; a ``dask.distributed.Client``: used as it is (left open).
    """
    if scheduler is None or (isinstance(scheduler, str) and scheduler in LOCAL_NAMES):
        kind = LOCAL_NAMES.get(scheduler or "threads", "threads")
        yield Scheduler(kind, workers=1 if kind == "sync" else max(1, os.cpu_count() or 1))
        return
    if isinstance(scheduler, str):
        sched = _connect(scheduler, timeout)
    elif _is_client(scheduler):
        sched = Scheduler("distributed", scheduler, owned=False, workers=_threads(scheduler))
    else:
        raise LstmvizError(
            f"scheduler: expected None (this machine's threads), 'threads', 'sync', a Dask "
            f"scheduler address ('tcp://host:8786') or a dask.distributed.Client; found "
            f"{type(scheduler).__name__} {scheduler!r:.60}"
        )
    try:
        yield sched
    finally:
        sched.close()


def _threads(client: Any) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # noqa: BLE001 - a cluster that cannot say is used with one thread
        return 1


def _connect(address: str, timeout: float) -> Scheduler:
    try:
        from distributed import Client
    except ImportError:
        raise MissingDependencyError(
            "distributed", "lstmviz[cluster]", what=f"Running on the Dask cluster at {address}"
        ) from None
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise LstmvizError(
            f"scheduler: could not reach the Dask scheduler at {address!r} ({e}); start one "
            "with `dask scheduler` and its workers with `dask worker ADDRESS`, or leave the "
            "scheduler out to use this machine's threads"
        ) from None
    workers = _threads(client)
    if not client.scheduler_info().get("workers"):
        client.close()
        raise LstmvizError(
            f"scheduler: the Dask scheduler at {address!r} has no workers; start some with "
            f"`dask worker {address}`"
        )
    return Scheduler("distributed", client, owned=True, workers=workers)


def _local_call(
    fn: Callable[..., Any], args: tuple[Any, ...], prev: Any, stop: ShouldStop | None
) -> Any:
    if prev is SKIPPED or (stop is not None and stop()):
        return SKIPPED
    return fn(*args, prev)


@contextlib.contextmanager
def one_thread_per_task() -> Iterator[None]:
    """The engine and BLAS on one thread each while the tasks run: Dask runs a task per core,
    so a task's own threads would only fight the others for the cores (the engine's
    threaded recurrence waits for its threads at every step). Both are given back after;
    the engine's results do not depend on its thread count."""
    from ...engine import set_threads

    previous = set_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # optional: without it BLAS keeps its own threads
            yield
            return
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        set_threads(previous)


_PINNED = {"done": False}


def cluster_call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a task on a cluster worker with the engine and BLAS on one thread (Dask's
    workers run one task per thread; it already sets ``OMP_NUM_THREADS=1`` for them)."""
    if not _PINNED["done"]:
        from ...engine import set_threads

        set_threads(1)
        with contextlib.suppress(ImportError):
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
        _PINNED["done"] = True
    return fn(*args)


def run_tasks(
    sched: Scheduler,
    specs: list[TaskSpec],
    on_done: Callable[[int, Any], None],
    should_stop: ShouldStop | None = None,
) -> bool:
    """Run ``specs``; ``on_done(i, result)`` for each finished task, on this thread.

    Returns True when every task ran, False when ``should_stop()`` stopped the job.
    """
    if not specs:
        return True
    if sched.distributed:
        return _run_distributed(sched, specs, on_done, should_stop)
    return _run_local(sched, specs, on_done, should_stop)


def _run_local(
    sched: Scheduler,
    specs: list[TaskSpec],
    on_done: Callable[[int, Any], None],
    should_stop: ShouldStop | None,
) -> bool:
    import dask
    from dask.callbacks import Callback

    job = uuid.uuid4().hex[:8]
    keys: dict[str, int] = {}
    tasks: list[Any] = []
    n = len(specs)
    for i, spec in enumerate(specs):
        prev = tasks[spec.after] if spec.after is not None else None
        # Dask's local scheduler starts independent tasks in descending key order: these
        # names make it go through the corpus from the start (a stopped job keeps a prefix)
        key = f"lstmviz-{spec.key or 'task'}-{job}-{n - 1 - i:09d}"
        keys[key] = i
        tasks.append(
            dask.delayed(_local_call, pure=False)(
                spec.fn, spec.args, prev, should_stop, dask_key_name=key
            )
        )
    ran = [False] * len(specs)

    def posttask(key: Any, result: Any, _dsk: Any, _state: Any, _worker: Any) -> None:
        i = keys.get(key) if isinstance(key, str) else None
        if i is None or result is SKIPPED:
            return
        ran[i] = True
        on_done(i, result)

    with Callback(posttask=posttask), one_thread_per_task():
        dask.compute(
            *tasks,
            scheduler="sync" if sched.kind == "sync" else "threads",
            num_workers=sched.workers,
            optimize_graph=False,
        )
    return all(ran)


def _run_distributed(
    sched: Scheduler,
    specs: list[TaskSpec],
    on_done: Callable[[int, Any], None],
    should_stop: ShouldStop | None,
) -> bool:
    import time

    client = sched.client
    job = uuid.uuid4().hex[:8]
    needed_by: dict[int, int] = {}
    for i, spec in enumerate(specs):
        if spec.after is not None:
            needed_by[spec.after] = max(needed_by.get(spec.after, -1), i)
    futures: dict[int, Any] = {}
    pending: dict[Any, int] = {}
    limit = max(4, 3 * sched.workers)  # bounded: only this many tasks' inputs are in flight
    nxt = 0
    try:
        while nxt < len(specs) or pending:
            if should_stop is not None and should_stop():
                client.cancel(list(pending))
                return False
            while nxt < len(specs) and len(pending) < limit:
                spec = specs[nxt]
                prev = futures.get(spec.after) if spec.after is not None else None
                fut = client.submit(
                    cluster_call,
                    spec.fn,
                    *spec.args,
                    prev,
                    key=f"lstmviz-{spec.key or 'task'}-{job}-{nxt}",
                    pure=False,
                )
                futures[nxt] = fut
                pending[fut] = nxt
                nxt += 1
            done = [f for f in pending if f.done()]  # futures of this client; no global one
            if not done:
                time.sleep(0.02)
                continue
            for fut in done:
                i = pending.pop(fut)
                result = fut.result()  # re-raises the task's own error
                on_done(i, result)
                if needed_by.get(i, -1) < nxt:
                    futures.pop(i, None)
            for j in [
                j for j in futures if needed_by.get(j, -1) < nxt and j not in pending.values()
            ]:
                futures.pop(j, None)
    except LstmvizError:
        client.cancel(list(pending))
        raise
    except Exception as e:
        client.cancel(list(pending))
        raise LstmvizError(f"the Dask cluster failed a task: {type(e).__name__}: {e}") from e
    return True
