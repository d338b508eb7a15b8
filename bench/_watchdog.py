"""The watchdog of the stress scripts (bench/stress_kernel.py, bench/stress_sampler.py).

Each trial is a child process. One that is not done ``timeout`` seconds after it started is
a hang: its threads' C stacks are read (``gdb``, when asked for and installed), then it gets
SIGABRT, on which the child's ``faulthandler`` prints its Python stacks, and it is reaped.
The outcome of every trial ("ok", a name from the script's exit codes, "crashed (status N)"
or "HUNG") is counted and printed, with the child's last lines when it was not ok.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence


def dump_hung(pid: int) -> str:
    """The C stacks of every thread of ``pid`` (gdb), or a note."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return "(no gdb for the C stacks)"
    r = subprocess.run(
        [gdb, "-q", "-p", str(pid), "-batch", "-ex", "thread apply all bt 25"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return r.stdout + r.stderr


class Watchdog:
    """Runs the trials of a stress script and counts their outcomes.

    Parameters
    ----------
    codes : mapping of int to str
        What a child's exit status means (``{0: "ok", 3: "WRONG"}``); any other is a crash.
    gdb : bool
        Print a hung child's C stacks (gdb) before it is aborted.
    tail : int
        How many of a failed child's last lines to print.
    show_ok : bool
        Print the whole output of a child that was ok too.
    """

    def __init__(
        self, codes: Mapping[int, str], *, gdb: bool, tail: int, show_ok: bool = False
    ) -> None:
        self.codes = dict(codes)
        self.gdb = gdb
        self.tail = tail
        self.show_ok = show_ok
        self.outcomes: dict[str, int] = {}

    def trial(self, label: str, cmd: Sequence[str], timeout: float) -> str:
        """Run ``cmd`` as one trial named ``label``; its outcome."""
        stacks = ""
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            rc = proc.returncode
            what = self.codes.get(rc, f"crashed (status {rc})")
        except subprocess.TimeoutExpired:
            stacks = dump_hung(proc.pid) if self.gdb else ""
            proc.send_signal(signal.SIGABRT)  # faulthandler prints the Python stacks
            out, _ = proc.communicate()
            what = "HUNG"
        self.outcomes[what] = self.outcomes.get(what, 0) + 1
        print(f"trial {label}: {what}", flush=True)
        lines = out.strip().splitlines()
        if what == "ok" and self.show_ok:
            print("  " + "\n  ".join(lines), flush=True)
        elif what != "ok":
            print("  " + "\n  ".join(lines[-self.tail :]), flush=True)
        if stacks:
            print("  C stacks (gdb):\n  " + "\n  ".join(stacks.splitlines()), flush=True)
        return what

    def finish(self, trials: int) -> int:
        """Print the outcomes; exit status 0 when all ``trials`` were ok."""
        print("outcomes:", ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())))
        return 0 if self.outcomes.get("ok", 0) == trials else 1
