"""Run the compiled kernel's tests under AddressSanitizer + UndefinedBehaviorSanitizer.

Builds ``lstmviz/engine/_lstm_kernel.c`` with ``-fsanitize=address,undefined`` into a
temporary folder (the installed kernel is left alone), then runs the kernel's tests with that
build standing in for ``lstmviz.engine._lstm_kernel`` and the ASan runtime preloaded (Python
itself is not instrumented).  An out-of-bounds access, a use after free or undefined behaviour
in the kernel (its threads included) fails the run; leak checking is off (the interpreter
keeps memory until exit on purpose).

    python tests/sanitize_kernel.py            # what .ci/run calls
    python tests/sanitize_kernel.py -k threads # extra pytest arguments

Skips (exit 0, with a note) when there is no C compiler or it lacks the sanitizers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "lstmviz", "engine", "_lstm_kernel.c")
TESTS = [
    "tests/engine/test_cell.py",
    "tests/engine/test_threads.py",
    "tests/engine/test_retrace.py",
]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
# as setup.py, plus debug information for readable reports
FLAGS = ["-O1", "-g", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]

PLUGIN = '''"""pytest plugin: the sanitized build of the kernel stands in for the installed one."""
import importlib.util
import sys

PATH = {path!r}
spec = importlib.util.spec_from_file_location("lstmviz.engine._lstm_kernel", PATH)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules["lstmviz.engine._lstm_kernel"] = module


def pytest_sessionstart(session):
    from lstmviz.engine import _accel

    kernel = _accel._load()["kernel"]
    if kernel is None or kernel.__file__ != PATH:
        raise SystemExit("the sanitized kernel is not the one in use: " + _accel.describe())
    print("kernel under ASan + UBSan:", PATH, "-", _accel.describe())
'''


def _compiler() -> str | None:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    exe = shutil.which(cc.split()[0])
    return exe and cc


def _skip(why: str) -> int:
    print(f"note: kernel sanitizer run skipped: {why}")
    return 0


def main(argv: list[str]) -> int:
    cc = _compiler()
    if cc is None:
        return _skip("no C compiler")
    with tempfile.TemporaryDirectory(prefix="lstmviz-san-") as tmp:
        probe = os.path.join(tmp, "probe.c")
        with open(probe, "w") as f:
            f.write("int main(void) { return 0; }\n")
        r = subprocess.run(
            [*cc.split(), *SAN, probe, "-o", os.path.join(tmp, "probe")],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            return _skip(f"{cc} cannot build with {' '.join(SAN[:1])}: {r.stderr.strip()[:300]}")
        asan = subprocess.run(
            [*cc.split(), "-print-file-name=libasan.so"], capture_output=True, text=True
        ).stdout.strip()
        if not os.path.isabs(asan) or not os.path.exists(asan):
            return _skip(f"{cc} does not say where its libasan.so is")
        ext = os.path.join(tmp, "_lstm_kernel" + sysconfig.get_config_var("EXT_SUFFIX"))
        include = sysconfig.get_paths()["include"]
        cmd = [*cc.split(), "-shared", "-fPIC", *FLAGS, *SAN, f"-I{include}", SOURCE, "-o", ext]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr)
            print("error: the kernel does not build with the sanitizers:", " ".join(cmd))
            return 1
        with open(os.path.join(tmp, "sanitized_kernel_plugin.py"), "w") as f:
            f.write(PLUGIN.format(path=ext))
        env = dict(os.environ)
        env["LD_PRELOAD"] = asan + (" " + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:symbolize=1"
        env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
        env["PYTHONPATH"] = os.pathsep.join([tmp, ROOT, env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        env["PYTHONMALLOC"] = "malloc"  # every Python allocation through ASan's malloc
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",  # the sanitizers' reports go straight to the terminal
            "-p",
            "no:cacheprovider",
            "-p",
            "sanitized_kernel_plugin",
            *TESTS,
            *argv,
        ]
        print("kernel sanitizer run:", " ".join(cmd), flush=True)
        return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
