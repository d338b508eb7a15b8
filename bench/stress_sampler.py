"""Stress the stack sampler of ``bench/gui_stall.py`` (its :func:`thread_stacks`) the way the
app's window loads it, with a watchdog: does the process hang, crash or corrupt memory?

Each trial is a child process that runs, for ``--seconds``:

- a sampler thread calling ``gui_stall.thread_stacks`` back to back (what the bench's
  ``Sampler`` does every 2 ms: every other thread's stack),
- :class:`gui_stall.GcTimer` (a ``gc.callbacks`` entry: Python code in every collection),
- threads that start and end one after the other (the app starts a thread per task),
- threads that call, allocate and free objects with a ``__del__`` (the buffer pool's blocks),

with collections made frequent (``gc.set_threshold``) and the GIL handed over often
(``sys.setswitchinterval``) so that a rare interleaving comes in seconds, not hours. A child
that is not done ``--grace`` seconds after its time is a hang: its threads' C stacks are
printed (``gdb``, when installed) and its Python stacks (``faulthandler``), then it is
killed.

    python bench/stress_sampler.py [--trials 10] [--seconds 30] [--unguarded] [--gdb]

``--unguarded`` runs the sampler without its garbage-collector guard (as it was before): on
CPython 3.11.7, 8 of 13 trials of 30 s hung (gdb: the sampler inside
``sys._current_frames()``, in a collection started by a new frame object, waiting for the
GIL; a thread starting another holding the GIL and waiting for the thread-list lock); a first
version of this script also saw a frame object read as an ``int``. With the guard, 15 of 15
trials finished.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import sys
import threading
import time
from pathlib import Path

from _watchdog import Watchdog

HERE = Path(__file__).resolve().parent


class Pooled:
    """An object whose ``__del__`` runs Python code, as the buffer pool's blocks do."""

    freed = 0

    def __init__(self) -> None:
        self.cycle = self  # freed by the collector only

    def __del__(self) -> None:
        Pooled.freed += 1


def _nest(depth: int) -> list[list[int]]:
    if depth == 0:
        return [[i] for i in range(5)]
    return _nest(depth - 1)


def child(seconds: float, unguarded: bool) -> int:
    """One trial; exit status 0 when it ran to the end with the sampler intact."""
    faulthandler.enable()
    sys.path.insert(0, str(HERE))
    import gui_stall

    gui_stall.GC_GUARD = not unguarded
    gc.set_threshold(20)
    sys.setswitchinterval(1e-5)
    gui_stall.GcTimer()
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:  # threads that start and end
        while not stop.is_set():
            t = threading.Thread(target=_nest, args=(5,))
            t.start()
            t.join()

    def work() -> None:  # calls, allocations, finalizers
        while not stop.is_set():
            _nest(10)
            Pooled()

    counts = {"samples": 0, "frames": 0}

    def sample() -> None:  # what Sampler.run does every 2 ms, back to back
        me = threading.get_ident()
        try:
            while not stop.is_set():
                for stack in gui_stall.thread_stacks(skip=me).values():
                    counts["frames"] += len(stack)
                counts["samples"] += 1
        except BaseException as e:  # noqa: BLE001 - a corrupted frame shows up here
            errors.append(e)

    sampler = threading.Thread(target=sample, daemon=True)
    threads = [threading.Thread(target=churn, daemon=True) for _ in range(2)]
    threads += [threading.Thread(target=work, daemon=True) for _ in range(2)]
    sampler.start()
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and sampler.is_alive():
        _nest(3)
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    sampler.join()
    n = counts["samples"]
    print(f"samples: {n}, frames read: {counts['frames']}", flush=True)
    if errors:
        print(f"the sampler failed: {type(errors[0]).__name__}: {errors[0]}", flush=True)
        return 3
    return 0 if n else 4


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30.0, help="per trial")
    p.add_argument("--grace", type=float, default=30.0, help="after which a trial hangs")
    p.add_argument("--unguarded", action="store_true", help="no GC guard (as before)")
    p.add_argument("--gdb", action="store_true", help="print a hung trial's C stacks")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a.seconds, a.unguarded)
    cmd = [sys.executable, __file__, "--child", "--seconds", str(a.seconds)]
    if a.unguarded:
        cmd.append("--unguarded")
    print(
        f"{a.trials} trials of {a.seconds:g} s, sampler {'WITHOUT' if a.unguarded else 'with'}"
        f" its GC guard; Python {sys.version.split()[0]}",
        flush=True,
    )
    dog = Watchdog({0: "ok", 3: "corrupted", 4: "no samples"}, gdb=a.gdb, tail=40)
    for i in range(a.trials):
        dog.trial(str(i + 1), cmd, a.seconds + a.grace)
    return dog.finish(a.trials)


if __name__ == "__main__":
    sys.exit(main())
