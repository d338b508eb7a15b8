"""A harness for malicious-file tests: run one call in a child process under a memory cap.

A reader that regresses on a hostile file should make a test *fail*, not make the machine
swap or kill pytest. :func:`run_capped` runs ``module:function(*args)`` in a fresh Python
process whose address space is capped (``resource.setrlimit(RLIMIT_AS)``) at what the child
used after its imports plus ``mem_mb``, with a timeout, and reports what happened::

    from tests.io.malicious import run_capped

    r = run_capped("lstmviz.io:load_model", [str(path)], mem_mb=300, marker=marker)
    r.assert_refused("ModelFileError", "external")      # an LstmvizError subclass, by name
    assert not r.marker_created                          # the payload never ran

Outcomes (``CappedResult.outcome``):

- ``"ok"``: the call returned; ``value`` is a short description of what it returned;
- ``"refused"``: it raised an :class:`lstmviz.errors.LstmvizError` (``exc_type``, ``message``,
  ``exc_mro``);
- ``"error"``: it raised anything else -- a raw ``MemoryError`` when the cap was hit, a
  ``TypeError``...: always a bug;
- ``"timeout"``, ``"crash"`` (the child died: a segfault, a signal).

``peak_mb`` is the child's peak resident memory after its imports (``ru_maxrss`` minus the
baseline), so a test can say "loading this 3 KB file stayed under 50 MB".

A *marker-file payload* is how a malicious file proves it ran code: a pickle that calls
``os.system("touch MARKER")``, a Lambda whose bytecode writes MARKER... Pass ``marker=`` and
the result's ``marker_created`` says whether it appeared (the harness deletes a stale one
first).

The child sets ``LSTMVIZ_MEMORY_BUDGET`` to ``budget`` (default: a quarter of ``mem_mb``) so
lstmviz's own budget refuses what the cap would kill, and pins BLAS to one thread (its per-
thread buffers would otherwise eat the cap). Heavy modules the call imports lazily (torch,
onnx) should be listed in ``preimport`` so they load before the cap is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: Modules every child imports before the cap (what the readers use).
BASE_IMPORTS = ("numpy", "h5py", "lstmviz", "lstmviz.io", "lstmviz.io.session")


@dataclass
class CappedResult:
    """What happened to one capped call (see the module docstring)."""

    outcome: str
    exc_type: str = ""
    exc_mro: list[str] = field(default_factory=list)
    message: str = ""
    value: str = ""
    peak_mb: float = 0.0
    returncode: int | None = None
    marker_created: bool = False
    stderr: str = ""

    @property
    def is_lstmviz_error(self) -> bool:
        return "LstmvizError" in self.exc_mro

    def describe(self) -> str:
        head = f"{self.outcome}"
        if self.exc_type:
            head += f" {self.exc_type}: {self.message[:400]}"
        if self.value:
            head += f" -> {self.value[:200]}"
        if self.outcome in ("crash", "timeout", "error"):
            head += f"\n--- child stderr (tail) ---\n{self.stderr[-3000:]}"
        return head + f" (peak {self.peak_mb:.0f} MB)"

    def assert_refused(self, error: str = "LstmvizError", *contains: str) -> None:
        """The call raised an LstmvizError subclass named ``error`` (or one of its
        subclasses) whose message contains each of ``contains`` (case-insensitive)."""
        assert self.outcome == "refused", self.describe()
        assert error in self.exc_mro, f"expected {error}; {self.describe()}"
        for c in contains:
            assert c.lower() in self.message.lower(), f"{c!r} not in message: {self.describe()}"
        assert not self.marker_created, "the file's payload ran (the marker file appeared)"


_CHILD = textwrap.dedent(
    """
    import faulthandler, importlib, json, os, resource, signal, sys, traceback
    spec = json.loads(sys.argv[1])
    faulthandler.enable()
    faulthandler.dump_traceback_later(spec["timeout"] + 1, exit=True)
    for name in spec["imports"]:
        importlib.import_module(name)
    mod_name, _, fn_name = spec["fn"].partition(":")
    fn = getattr(importlib.import_module(mod_name), fn_name)

    def vm_bytes():
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        return 0

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cap = vm_bytes() + spec["mem_mb"] * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    out = {"outcome": "ok"}
    try:
        v = fn(*spec["args"])
        out["value"] = repr(v)[:500]
    except BaseException as e:  # noqa: BLE001 - the child reports whatever happened
        mro = [c.__name__ for c in type(e).__mro__]
        out.update(
            outcome="refused" if "LstmvizError" in mro else "error",
            exc_type=type(e).__name__,
            exc_mro=mro,
            message=str(e)[:4000],
        )
        if "LstmvizError" not in mro:
            traceback.print_exc()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["peak_mb"] = max(peak - base_rss, 0) / 1024
    sys.stdout.write("\\n@@RESULT@@" + json.dumps(out) + "\\n")
    sys.stdout.flush()
    os._exit(0)
    """
)


def run_capped(
    fn_path: str,
    args: Sequence[Any] = (),
    mem_mb: int = 512,
    *,
    timeout: float = 60.0,
    marker: str | os.PathLike[str] | None = None,
    budget: str | None = None,
    preimport: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> CappedResult:
    """Call ``fn_path`` (``"package.module:function"``) with JSON-able ``args`` in a child
    process capped at ``mem_mb`` MiB above its post-import footprint.

    Parameters
    ----------
    fn_path : str
        ``"module:function"``; the module is imported in the child (from the repository root,
        so ``tests.io.test_malicious:helper`` works).
    args : sequence
        Positional arguments, JSON-serialisable (paths as strings).
    mem_mb : int
        Address space the call may add, in MiB.
    timeout : float
        Seconds before the child is killed (outcome ``"timeout"``).
    marker : path, optional
        A file the malicious payload would create; removed before the run, checked after.
    budget : str, optional
        ``LSTMVIZ_MEMORY_BUDGET`` for the child (default: ``mem_mb // 4`` MiB).
    preimport : sequence of str
        Extra modules imported before the cap is set (torch, onnx, onnxruntime).
    env : dict, optional
        Extra environment variables for the child.
    """
    if marker is not None:
        Path(marker).unlink(missing_ok=True)
    spec = {
        "fn": fn_path,
        "args": list(args),
        "mem_mb": int(mem_mb),
        "timeout": float(timeout),
        "imports": [*BASE_IMPORTS, *preimport],
    }
    child_env = dict(os.environ)
    child_env.update(
        {
            "LSTMVIZ_MEMORY_BUDGET": budget or f"{max(mem_mb // 4, 16)}MiB",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), child_env.get("PYTHONPATH", "")]),
            "LSTMVIZ_TESTING": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
    )
    child_env.update(env or {})
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            cwd=ROOT,
            env=child_env,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        return CappedResult(
            "timeout",
            stderr=(e.stderr.decode() if isinstance(e.stderr, bytes) else e.stderr or ""),
            marker_created=marker is not None and Path(marker).exists(),
        )
    marker_created = marker is not None and Path(marker).exists()
    line = next(
        (ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")),
        None,
    )
    if line is None:
        return CappedResult(
            "timeout" if "Timeout" in proc.stderr else "crash",
            returncode=proc.returncode,
            marker_created=marker_created,
            stderr=proc.stderr,
        )
    d = json.loads(line[len("@@RESULT@@") :])
    return CappedResult(
        d["outcome"],
        exc_type=d.get("exc_type", ""),
        exc_mro=d.get("exc_mro", []),
        message=d.get("message", ""),
        value=d.get("value", ""),
        peak_mb=float(d.get("peak_mb", 0.0)),
        returncode=proc.returncode,
        marker_created=marker_created,
        stderr=proc.stderr,
    )
