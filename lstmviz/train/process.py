"""Training in a child process, supervised from a (Qt worker) thread.

TensorFlow's import and Keras's training loop hold Python's GIL for long stretches; in the
app's own process they would stall the GUI thread for hundreds of milliseconds. Here the
child process imports TensorFlow and runs :func:`lstmviz.train.core.train`; the supervising
thread (the app's ``QThread`` worker) relays its messages -- batch logs, weight snapshots --
and turns Cancel and Pause into events the child checks between batches.

This module imports neither TensorFlow nor Qt; the child does the TensorFlow part.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LstmvizError
from .tasks import Task, TrainConfig

_TMP_PREFIX = "lstmviz-train-"


@dataclass
class TrainSummary:
    """What a training process hands back: numbers and the saved model's temporary path."""

    task: Task
    config: TrainConfig
    model_path: str
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    stopped: bool = False
    steps: int = 0
    seconds: float = 0.0

    def cleanup(self) -> None:
        """Delete the temporary copy of the model (after saving it, or when discarded)."""
        d = Path(self.model_path).parent
        if d.name.startswith(_TMP_PREFIX):
            shutil.rmtree(d, ignore_errors=True)

    def save(self, path: str, info: Any = None) -> str:
        """Copy the model to ``path`` (``.keras``) and write its sidecar (no TensorFlow)."""
        from ..io.atomic import atomic_target
        from ..io.meta import save_info
        from .core import _readable

        p = Path(path)
        if p.suffix != ".keras":
            raise LstmvizError(f"{p}: the trained model is saved as .keras; use a .keras name")
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_target(p) as tmp:
            shutil.copyfile(self.model_path, tmp)
        if info is None:
            info = self.task.info(self.config, self.metrics)
        _readable(p, save_info(p, info))
        return str(p)


class ProcessTrainingError(LstmvizError):
    """Training failed in the child process; ``summary`` keeps the last good model (or None)."""

    def __init__(self, msg: str, summary: TrainSummary | None = None) -> None:
        super().__init__(msg)
        self.summary = summary


def _task_ref(task: Task) -> Any:
    from .tasks import get_task

    try:
        if get_task(task.name) is task:
            return task.name  # a registered task travels by name
    except LstmvizError:
        pass
    return task


def _child(
    task_ref: Any,
    config: TrainConfig,
    arch_path: str | None,
    out_dir: str,
    q: Any,
    cancel: Any,
    paused: Any,
    log_interval: float,
    threads: int | None,
) -> None:  # pragma: no cover
    """The child process: import TensorFlow, train, save, report through ``q``."""
    parent = os.getppid()  # a killed app stops the training too: no orphaned run
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)  # the window's event loop gets the CPU first
    try:
        from .backend import keras_module
        from .core import TrainingError, clone_architecture, train
        from .tasks import get_task

        task = get_task(task_ref) if isinstance(task_ref, str) else task_ref
        keras_module(threads=threads)
        q.put(("phase", "building the model…"))
        model = clone_architecture(arch_path) if arch_path else None
        pending: list[Any] = []
        last = [0.0]

        def on_batch(b: Any) -> None:
            pending.append(b)
            now = time.monotonic()
            if now - last[0] >= log_interval or b.step >= b.total:
                last[0] = now
                q.put(("logs", list(pending)))
                pending.clear()

        def on_snapshot(s: Any) -> None:
            if pending:
                q.put(("logs", list(pending)))
                pending.clear()
            q.put(("snapshot", s))

        class _Pause:
            @property
            def paused(self) -> bool:
                return paused.is_set()

            def wait(self, should_stop: Any = None) -> None:
                while paused.is_set() and not cancel.is_set() and os.getppid() == parent:
                    time.sleep(0.05)

        def summary(r: Any) -> TrainSummary:
            path = os.path.join(out_dir, "model.keras")
            r.model.save(path)
            return TrainSummary(
                task, config, path, r.history, r.metrics, r.stopped, r.steps, r.seconds
            )

        try:
            r = train(
                task,
                config,
                None,
                lambda: cancel.is_set() or os.getppid() != parent,
                on_snapshot,
                on_batch=on_batch,
                pause=_Pause(),
                model=model,
            )
        except TrainingError as e:
            q.put(("error", str(e), summary(e.result) if e.result is not None else None))
            return
        q.put(("done", summary(r)))
    except LstmvizError as e:
        q.put(("error", str(e), None))
    except Exception as e:  # noqa: BLE001 - everything reaches the parent's one dialog
        q.put(
            (
                "error",
                f"training failed: {type(e).__name__}: {e}\n\n{traceback.format_exc(limit=8)}",
                None,
            )
        )


_spawn_lock = threading.Lock()


def _start_without_main(proc: Any) -> None:
    """Start a spawned process without re-importing the parent's ``__main__``.

    ``spawn`` normally runs the parent's main script again in the child (it must be guarded
    by ``if __name__ == "__main__"``); the training child needs nothing from it, and an
    unguarded script (a user's, a notebook's) would start a second app or loop forever.
    """
    import multiprocessing.spawn as mps

    with _spawn_lock:
        orig = mps.get_preparation_data

        def prep(name: str) -> dict[str, Any]:
            d = orig(name)
            d.pop("init_main_from_path", None)
            d.pop("init_main_from_name", None)
            return d

        mps.get_preparation_data = prep
        try:
            proc.start()
        finally:
            mps.get_preparation_data = orig


def train_in_process(
    task: Task,
    config: TrainConfig,
    *,
    on_message: Callable[[str, Any], None],
    should_stop: Callable[[], bool] = lambda: False,
    is_paused: Callable[[], bool] = lambda: False,
    arch_path: str | None = None,
    log_interval: float = 0.1,
    poll: float = 0.05,
    threads: int | None = 1,
) -> TrainSummary:
    """Train ``task`` in a child process; blocks (call it from a worker thread).

    ``on_message(kind, obj)`` receives ``("phase", str)``, ``("logs", [BatchLog])`` and
    ``("snapshot", Snapshot)`` as they come. ``should_stop()`` and ``is_paused()`` are
    polled every ``poll`` seconds and passed on to the child. ``threads`` caps TensorFlow's
    thread pools in the child (1 leaves a core to the GUI on a 2-core machine).

    Raises
    ------
    ProcessTrainingError
        Training failed (``summary`` holds the last good model when there is one).
    """
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    cancel = ctx.Event()
    paused = ctx.Event()
    out_dir = tempfile.mkdtemp(prefix=_TMP_PREFIX)
    proc = ctx.Process(
        target=_child,
        name="lstmviz training",
        args=(
            _task_ref(task),
            config,
            arch_path,
            out_dir,
            q,
            cancel,
            paused,
            log_interval,
            threads,
        ),
        daemon=True,
    )
    _start_without_main(proc)
    try:
        while True:
            if should_stop():
                cancel.set()
            if is_paused():
                paused.set()
            else:
                paused.clear()
            try:
                msg = q.get(timeout=poll)
            except queue.Empty:
                if not proc.is_alive():
                    raise ProcessTrainingError(
                        f"the training process ended unexpectedly (exit code {proc.exitcode})"
                    ) from None
                continue
            kind = msg[0]
            if kind == "done":
                return msg[1]
            if kind == "error":
                if msg[2] is None:
                    shutil.rmtree(out_dir, ignore_errors=True)
                raise ProcessTrainingError(msg[1], msg[2])
            on_message(kind, msg[1])
    finally:
        cancel.set()
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        q.close()


def _keras_engine_child(
    requests: Any, replies: Any, threads: int | None
) -> None:  # pragma: no cover
    """The Keras engine's process: import TensorFlow once, then trace what is asked."""
    import warnings

    # Keras's notes about input structures are not the user's business in the app's terminal
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")
    try:
        from .backend import keras_module
        from .gate_lstm import keras_trace

        keras_module(threads=threads)
    except Exception as e:  # noqa: BLE001 - reported to the app's dialog
        replies.put(("error", None, f"the Keras engine could not start: {type(e).__name__}: {e}"))
        return
    replies.put(("ready", None, None))
    parent = os.getppid()
    while True:
        try:
            req = requests.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the app was killed: nobody is left to serve
                return
            continue
        except (EOFError, OSError):
            return
        if req is None:
            return
        rid, model, x = req
        try:
            replies.put(("trace", rid, keras_trace(model, x)))
        except LstmvizError as e:
            replies.put(("error", rid, str(e)))
        except Exception as e:  # noqa: BLE001
            replies.put(
                (
                    "error",
                    rid,
                    f"the Keras engine failed: {type(e).__name__}: {e}\n\n"
                    f"{traceback.format_exc(limit=8)}",
                )
            )


class KerasEngineProcess:
    """The app's Keras engine (:func:`lstmviz.train.gate_lstm.keras_trace`) in a child
    process that imports TensorFlow once and stays up for the next trace.

    In a thread of the app, TensorFlow's import held Python's GIL and froze the window for
    ~0.3 s; here the app only pickles the engine model and the input and waits (call
    :meth:`trace` from a worker thread). :meth:`shutdown` ends the process.
    """

    def __init__(self, threads: int | None = 1) -> None:
        self.threads = threads
        self._proc: Any = None
        self._requests: Any = None
        self._replies: Any = None
        self._rid = 0
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def _ensure(self) -> None:
        if self.running:
            return
        self.shutdown()
        ctx = mp.get_context("spawn")
        self._requests, self._replies = ctx.Queue(), ctx.Queue()
        self._proc = ctx.Process(
            target=_keras_engine_child,
            name="lstmviz keras engine",
            args=(self._requests, self._replies, self.threads),
            daemon=True,
        )
        _start_without_main(self._proc)

    def trace(
        self,
        model: Any,
        x: Any,
        should_stop: Callable[[], bool] = lambda: False,
        poll: float = 0.05,
    ) -> Any:
        """The Keras engine's :class:`~lstmviz.engine.Trace` of ``model`` on ``x``; None when
        ``should_stop()`` turned true first (the child finishes that trace and drops it).

        Raises
        ------
        LstmvizError
            The model cannot be traced with Keras, or the process failed.
        """
        with self._lock:
            self._ensure()
            self._rid += 1
            rid = self._rid
            self._requests.put((rid, model, x))
            while True:
                if should_stop():
                    return None
                try:
                    kind, mrid, obj = self._replies.get(timeout=poll)
                except (queue.Empty, OSError, ValueError, EOFError):  # closed: shut down
                    if should_stop():
                        return None
                    if not self.running:
                        code = self._proc.exitcode if self._proc is not None else None
                        self.shutdown()
                        raise LstmvizError(
                            f"the Keras engine's process ended unexpectedly (exit code {code})"
                        ) from None
                    continue
                if kind == "error" and mrid is None:  # could not even start
                    self.shutdown()
                    raise LstmvizError(obj)
                if mrid != rid:
                    continue  # "ready", or the answer to a request given up on
                if kind == "trace":
                    return obj
                raise LstmvizError(obj)

    def shutdown(self, timeout: float = 5.0) -> None:
        """End the child process (a trace in progress is abandoned)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(Exception):
            self._requests.put(None)
        proc.join(0.5)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout)
        for q in (self._requests, self._replies):
            with contextlib.suppress(Exception):
                q.close()
