"""How long the window's event loop stalls while it works on a big trace.

A 5 ms QTimer probes the Qt event loop of the real main window (every menu and panel built)
while it, one after the other:

- opens a model (two stacked LSTMs of UNITS units, a Dense head) on an input of STEPS steps,
- takes a new input typed in (a different sequence of the same length),
- runs a what-if (the What-if panel: one step changed, retraced from there),
- closes the What-if panel,
- switches the layer shown,
- shows a training snapshot (the same architecture, other weights).

Each action ends when its result is on screen. The stall of one probe tick is how late it
fired; the goal is no stall over 50 ms at 1024 units x 10,000 steps.

    python bench/gui_stall.py [--units 1024] [--steps 10000] [--repeat 3]

Runs offscreen unless a display is set. As the ``lstmviz`` command does, the window's objects
are moved out of the garbage collector's view once it is built (``gc.freeze``; ``--no-freeze``
leaves them). Prints per action: wall time until shown, the longest and 99th-percentile
stall, how much of the longest stall the GUI thread spent on its own CPU (the rest is
waiting: for the CPU on a busy machine, or for the GIL held by a worker) and in garbage
collections; and the busiest turn: the most CPU the GUI thread spent between two probe
ticks (its own work, whatever the machine's load).
Then the hot spots: a sampler thread records the GUI thread's Python stack every 2 ms, and
the samples taken inside stalls over ``--hot-ms`` (default 50) are summed per place in
lstmviz's code (the innermost lstmviz frames; ``--depth`` of them).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("LSTMVIZ_TESTING", "1")  # no saved window layout, a temporary data folder

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication


def build_model(units: int, features: int, seed: int):
    """Two stacked LSTMs and a softmax head (an engine model, written to a .keras file by
    Keras when it is installed so that opening reads a real file)."""
    from lstmviz.engine.cell import LSTMWeights
    from lstmviz.engine.layers import LSTM, Dense, InputLayer
    from lstmviz.engine.model import Model, Node

    rng = np.random.default_rng(seed)

    def w(f: int, u: int) -> LSTMWeights:
        return LSTMWeights(
            rng.normal(0, 1 / np.sqrt(f), (f, 4 * u)),
            rng.normal(0, 1 / np.sqrt(u), (u, 4 * u)),
            rng.normal(0, 0.1, 4 * u),
        )

    nodes = [
        Node(InputLayer("input", (None, None, features)), 0, []),
        Node(LSTM("lstm_1", w(features, units), return_sequences=True), 0, [("input", 0, 0)]),
        Node(LSTM("lstm_2", w(units, units), return_sequences=True), 0, [("lstm_1", 0, 0)]),
        Node(
            Dense("head", rng.normal(0, 0.1, (units, 10)), np.zeros(10), "softmax"),
            0,
            [("lstm_2", 0, 0)],
        ),
    ]
    return Model("stall_bench", nodes, [("input", 0, 0)], [("head", 0, 0)])


KERAS_SCRIPT = """
import sys
import keras
units, features, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
inp = keras.Input((None, features))
h = keras.layers.LSTM(units, return_sequences=True, name="lstm_1")(inp)
h = keras.layers.LSTM(units, return_sequences=True, name="lstm_2")(h)
out = keras.layers.Dense(10, activation="softmax", name="head")(h)
keras.Model(inp, out).save(path)
"""


def save_keras(units: int, features: int, path: Path) -> bool:
    """The same architecture as a real .keras file, written by Keras in a child process (the
    app never imports TensorFlow; neither does the process measured). False without Keras."""
    import subprocess

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    r = subprocess.run(
        [sys.executable, "-c", KERAS_SCRIPT, str(units), str(features), str(path)],
        capture_output=True,
        env=env,
        check=False,
    )
    return r.returncode == 0 and path.is_file()


class Probe:
    """Records how late a 5 ms timer fires, and the GUI thread's CPU time meanwhile."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.cpu: list[float] = []
        self.ends: list[float] = []
        self.last = time.perf_counter()
        self.last_cpu = time.thread_time()
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self.tick)

    def tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.gaps.append(now - self.last - 0.005)
        self.cpu.append(cpu - self.last_cpu)
        self.ends.append(now)
        self.last, self.last_cpu = now, cpu

    def start(self) -> None:
        self.gaps, self.cpu, self.ends = [], [], []
        self.last, self.last_cpu = time.perf_counter(), time.thread_time()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return self.gaps

    def stalls(self, over: float) -> list[tuple[float, float, float]]:
        """``(start, end, gap)`` of every stall longer than ``over`` seconds."""
        return [
            (end - gap - 0.005, end, gap)
            for end, gap in zip(self.ends, self.gaps, strict=True)
            if gap > over
        ]


class GcTimer:
    """Records every garbage collection on the GUI thread: ``(start, end, generation)``."""

    def __init__(self) -> None:
        import gc

        self.spans: list[tuple[float, float, int]] = []
        self._t0 = 0.0
        self._gui = threading.main_thread().ident
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if threading.get_ident() != self._gui:
            return
        now = time.perf_counter()
        if phase == "start":
            self._t0 = now
        else:
            self.spans.append((self._t0, now, int(info.get("generation", -1))))

    def inside(self, a: float, b: float) -> tuple[float, int]:
        """Seconds of collection inside ``[a, b]`` and the oldest generation collected."""
        total, oldest = 0.0, -1
        for s, e, g in self.spans:
            overlap = min(e, b) - max(s, a)
            if overlap > 0:
                total += overlap
                oldest = max(oldest, g)
        return total, oldest


#: pause the garbage collector while :func:`thread_stacks` walks the other threads' frames
#: (False only to show what happens without: ``bench/stress_sampler.py --unguarded``)
GC_GUARD = True


def thread_stacks(
    skip: int | None = None, depth: int = 60
) -> dict[int, tuple[tuple[str, int, str], ...]]:
    """Every Python thread's stack but ``skip``'s, innermost frame first:
    ``{thread ident: ((file, line, function), ...)}``, at most ``depth`` frames each.

    The walk runs with the garbage collector paused. On CPython 3.11,
    ``sys._current_frames()`` and ``frame.f_back`` may create frame objects, and creating
    one may start a collection right there; the collection runs Python code (``gc.callbacks``
    such as :class:`GcTimer`'s, ``__del__`` methods such as the buffer pool's), which lets
    another thread take the GIL in the middle. Inside ``sys._current_frames()`` the sampler
    then holds the interpreter's thread-list lock without the GIL, and a thread that starts
    or ends (the app's workers do, task by task) holds the GIL and waits for that lock: the
    process hangs for good (fixed in CPython 3.11.9:
    https://github.com/python/cpython/issues/106883). Inside
    ``f_back`` the other thread may return from the frame being walked meanwhile: its
    memory is freed under the sampler (a crash, or a corrupted object). Both are shown by
    ``bench/stress_sampler.py``.
    """
    enabled = gc.isenabled()
    if GC_GUARD:
        gc.disable()
    try:
        out: dict[int, tuple[tuple[str, int, str], ...]] = {}
        for ident, frame in sys._current_frames().items():
            if ident == skip:
                continue
            stack = []
            f: Any = frame
            while f is not None and len(stack) < depth:
                code = f.f_code
                stack.append((code.co_filename, f.f_lineno, code.co_name))
                f = f.f_back
            out[ident] = tuple(stack)
    finally:
        if GC_GUARD and enabled:
            gc.enable()
    return out


class Sampler(threading.Thread):
    """Samples the GUI thread's Python stack every ``interval`` seconds (a daemon thread)."""

    def __init__(self, interval: float = 0.002) -> None:
        super().__init__(name="stall sampler", daemon=True)
        self.interval = interval
        self.target = threading.main_thread().ident
        self.samples: list[tuple[float, tuple[tuple[str, int, str], ...]]] = []
        self.others: list[tuple[float, str, tuple[tuple[str, int, str], ...]]] = []
        #: the GUI thread's scheduler state at each sample (Linux): R running or runnable
        #: (waiting for a CPU), S sleeping (waiting: the GIL, a lock, a timer), D disk
        self.states: list[tuple[float, str]] = []
        self._stat = Path(f"/proc/self/task/{threading.get_native_id()}/stat")
        self.running = threading.Event()
        self.running.set()

    def run(self) -> None:
        me = threading.get_ident()
        while self.running.is_set():
            try:
                state = self._stat.read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                state = "?"
            stacks = thread_stacks(skip=me)
            now = time.perf_counter()
            self.states.append((now, state))
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, stack in stacks.items():
                if ident == self.target:
                    self.samples.append((now, tuple(stack)))
                else:
                    self.others.append((now, names.get(ident, "?"), tuple(stack)))
            time.sleep(self.interval)

    def hot_spots(
        self, windows: list[tuple[float, float, float]], depth: int
    ) -> tuple[Counter, int]:
        """Samples inside ``windows`` counted per place: the innermost ``depth`` frames of
        lstmviz's code (or the innermost frame when none is lstmviz's)."""
        counts: Counter = Counter()
        n = 0
        for t, stack in self.samples:
            if any(a <= t <= b for a, b, _ in windows):
                n += 1
                counts[_key(stack, depth)] += 1
        return counts, n

    def thread_states(self, windows: list[tuple[float, float, float]]) -> Counter:
        """The GUI thread's scheduler states sampled inside ``windows``."""
        return Counter(st for t, st in self.states if any(a <= t <= b for a, b, _ in windows))

    def other_threads(self, windows: list[tuple[float, float, float]], depth: int) -> Counter:
        """What the other threads were doing inside ``windows`` (those in lstmviz's code, or
        not waiting): each may hold the GIL the GUI thread waits for."""
        counts: Counter = Counter()
        for t, name, stack in self.others:
            if not any(a <= t <= b for a, b, _ in windows):
                continue
            if not any("/lstmviz/" in f[0] for f in stack):
                continue
            counts[f"({name}) " + _key(stack, depth)] += 1
        return counts


def _key(stack: tuple[tuple[str, int, str], ...], depth: int) -> str:
    ours = [f for f in stack if "/lstmviz/" in f[0]]
    frames = ours[:depth] if ours else stack[:1]
    if not ours and frames and frames[0][2] in ("qt_work", "nap"):
        return {
            "qt_work": "Qt's own work (layout, painting, event dispatch: no Python frame)",
            "nap": "waiting for the GIL (held by another thread) or for a CPU",
        }[frames[0][2]]
    key = " < ".join(f"{_short(f[0])}:{f[1]} {f[2]}" for f in frames)
    if ours and stack and stack[0] is not ours[0]:
        key = f"[{_short(stack[0][0])}:{stack[0][1]} {stack[0][2]}] " + key
    return key


STATE_NAMES = {
    "R": "running or waiting for a CPU",
    "S": "asleep (the GIL, a lock, a timer)",
    "D": "waiting for the disk",
}


def major_faults() -> tuple[int, int]:
    """Major page faults so far of the GUI thread and of the whole process (Linux; zeros
    elsewhere): pages read back from disk -- library code evicted by the OS, say -- stall the
    thread that touches them without using its CPU."""
    out = []
    for path in (f"/proc/self/task/{threading.get_native_id()}/stat", "/proc/self/stat"):
        try:
            fields = Path(path).read_text().rsplit(")", 1)[1].split()
            out.append(int(fields[9]))  # majflt: field 12 of stat(5), 10th after the name
        except (OSError, IndexError, ValueError):
            out.append(0)
    return out[0], out[1]


def _short(path: str) -> str:
    i = path.rfind("/lstmviz/")
    if i >= 0:
        return path[i + 1 :]
    parts = path.split("/")
    return "/".join(parts[-2:])


def run(
    units: int,
    steps: int,
    repeat: int,
    hot_ms: float = 50.0,
    depth: int = 3,
    freeze: bool = True,
) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from lstmviz.app.main_window import MainWindow

    features = 16
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(1, steps, features)).astype(np.float32)
    x2 = rng.normal(size=(1, steps, features)).astype(np.float32)
    tmp = Path(tempfile.mkdtemp(prefix="lstmviz-stall-"))
    path = tmp / "stall.keras"
    real_file = save_keras(units, features, path)
    snapshot = build_model(units, features, seed=7)

    w = MainWindow()
    w.resize(1600, 900)
    w.show()
    if freeze:  # what the lstmviz command does once its menus and panels are built
        from lstmviz.app.main import freeze_gc

        for _ in range(20):
            app.processEvents()
        freeze_gc()
    # a user opens a model from the welcome page a moment after the window appears: the
    # window imports the model readers in that moment (MainWindow.LOADER_WARM_MS)
    t_idle = time.perf_counter() + 1.5
    while time.perf_counter() < t_idle:
        app.processEvents()
        time.sleep(0.005)
    gc_timer = GcTimer()
    probe = Probe()
    sampler = Sampler()
    sampler.start()

    def qt_work() -> None:  # a sample here: Qt's own work (layout, painting, no Python)
        app.processEvents()

    def nap() -> None:  # a sample here after 1 ms: waiting for the GIL or for a CPU
        time.sleep(0.001)

    from lstmviz.app import stagger

    def spin_until(cond, timeout: float = 600.0) -> float:
        t0 = time.perf_counter()
        while not cond():
            qt_work()
            nap()
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the action did not finish")
        quiet = 0
        while quiet < 5:  # the repaints that show it: until five turns find nothing held
            qt_work()
            nap()
            idle = stagger.pending(w.state) == 0 and stagger.held(w.state) == 0
            quiet = quiet + 1 if idle else 0
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the views did not finish drawing")
        return time.perf_counter() - t0

    def settled() -> bool:  # traced, and every view has drawn it (see lstmviz/app/stagger.py)
        return (
            w.state.trace is not None
            and not w.state.busy
            and not w.runner.is_running()
            and not w.trace_runner.is_running()
            and stagger.pending(w.state) == 0
            and stagger.held(w.state) == 0
        )

    results: dict[str, list[tuple[float, float, float, float, float, int, float, float]]] = {}
    windows: dict[str, list[tuple[float, float, float]]] = {}

    faults: dict[str, list[tuple[int, int]]] = {}

    def measure(name: str, act, done) -> None:
        f0 = major_faults()
        probe.start()
        act()
        wall = spin_until(done)
        gaps = np.asarray(probe.stop()) * 1000
        f1 = major_faults()
        faults.setdefault(name, []).append((f1[0] - f0[0], f1[1] - f0[1]))
        i = int(gaps.argmax()) if gaps.size else -1
        # the busiest probe interval: the most GUI-thread CPU between two ticks
        j = int(np.argmax(probe.cpu)) if gaps.size else -1
        collected, generation = (
            gc_timer.inside(probe.ends[i] - gaps[i] / 1000 - 0.005, probe.ends[i])
            if gaps.size
            else (0.0, -1)
        )
        results.setdefault(name, []).append(
            (
                wall,
                float(gaps[i]) if gaps.size else 0.0,
                float(np.percentile(gaps, 99)) if gaps.size else 0.0,
                probe.cpu[i] * 1000 if gaps.size else 0.0,
                collected * 1000,
                generation,
                probe.cpu[j] * 1000 if gaps.size else 0.0,
                float(gaps[j]) if gaps.size else 0.0,
            )
        )
        windows.setdefault(name, []).extend(probe.stalls(hot_ms / 1000))

    for _ in range(repeat):
        if real_file:
            measure("open a model", lambda: w.open_model(path, x=x1), settled)
        else:
            model = build_model(units, features, seed=1)
            measure(
                "open a model",
                lambda m=model: w.state.open("stall", x=x1, load=lambda: (m, None, x1)),
                settled,
            )
        gen = w.state.generation
        measure(
            "type a new input",
            lambda: w.state.set_input(x2),
            lambda g=gen: w.state.generation > g and settled(),
        )
        panel = w.panels.open("what_if")
        for _ in range(20):
            app.processEvents()
        panel.step.setValue(steps // 2)
        panel.values.setText(" ".join(["0.5"] * features))
        panel.result = None
        measure("what-if in the middle", panel.run, lambda: panel.result is not None)
        # its own action: the maps grow into the panel's space (laid out and drawn again)
        measure("close the What-if panel", w.panels.close_all, lambda: True)
        other = next(n for n in w.state.layer_names if n != w.state.layer)
        measure("switch layer", lambda o=other: w.state.set_layer(o), settled)
        gen = w.state.generation
        measure(
            "show a training snapshot",
            lambda: w.state.show_weights(snapshot, engine="NumPy · snapshot"),
            lambda g=gen: w.state.generation > g and settled(),
        )
    w.close()
    sampler.running.clear()
    sampler.join()
    print(
        f"GUI stalls, {units} units x {steps} steps x 2 layers, batch 1 "
        f"({'a .keras file' if real_file else 'an engine model'}); {repeat} runs; "
        f"goal: no stall over 50 ms; "
        + ("gc.freeze() once the window is built, as lstmviz does" if freeze else "no gc.freeze()")
    )
    import lstmviz

    print(f"  lstmviz from {Path(lstmviz.__file__).parent}")
    worst = 0.0
    for name, rows in results.items():
        a = np.asarray(rows)
        worst = max(worst, float(a[:, 1].max()))
        k = int(a[:, 1].argmax())
        gc_note = f", GC {a[k, 4]:.0f} ms (gen {int(a[k, 5])})" if a[k, 4] > 0.5 else ""
        print(
            f"  {name:<26} shown after {np.median(a[:, 0]) * 1000:7.0f} ms (median)  "
            f"longest stall {a[:, 1].max():6.1f} ms "
            f"(GUI thread CPU {a[k, 3]:5.1f} ms{gc_note})  p99 {np.median(a[:, 2]):5.1f} ms  "
            f"major page faults {sum(f[0] for f in faults[name])} GUI thread / "
            f"{sum(f[1] for f in faults[name])} process"
        )
        k = int(a[:, 6].argmax())
        print(
            f"  {'':<26} busiest turn: GUI thread CPU {a[k, 6]:5.1f} ms "
            f"(in a stall of {a[k, 7]:.1f} ms)"
        )
    print(f"  longest stall of all: {worst:.1f} ms ({'met' if worst <= 50 else 'NOT met'})")
    print(f"hot spots: the GUI thread's stack in stalls over {hot_ms:g} ms (2 ms samples)")
    for name, win in windows.items():
        if not win:
            continue
        counts, n = sampler.hot_spots(win, depth)
        total = sum(g for _, _, g in win) * 1000
        print(f"  {name}: {len(win)} stall(s), {total:.0f} ms in all, {n} samples")
        states = sampler.thread_states(win)
        if states:
            k = sum(states.values())
            parts = [f"{STATE_NAMES.get(st, st)} {c * 100 / k:.0f}%" for st, c in states.items()]
            print("    GUI thread state: " + ", ".join(parts))
        for key, c in counts.most_common(6):
            print(f"    {c * 100 / max(n, 1):4.0f}%  {key}")
        others = sampler.other_threads(win, depth)
        if others:
            print("    other threads in lstmviz's code meanwhile (they may hold the GIL):")
            for key, c in others.most_common(4):
                print(f"    {c * 100 / max(n, 1):4.0f}%  {key}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--units", type=int, default=1024)
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--hot-ms", type=float, default=50.0, help="stalls profiled (ms)")
    p.add_argument("--depth", type=int, default=3, help="lstmviz frames per hot spot")
    p.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the window's objects to the garbage collector (no gc.freeze)",
    )
    a = p.parse_args(argv)
    return run(a.units, a.steps, a.repeat, a.hot_ms, a.depth, freeze=not a.no_freeze)


if __name__ == "__main__":
    sys.exit(main())
