"""Build hook for lstmviz's optional compiled LSTM kernel (metadata lives in pyproject.toml).

``lstmviz.engine._lstm_kernel`` is a small C extension that runs the LSTM recurrence without
the interpreter between steps; it needs only a C compiler and Python's headers (no NumPy or
BLAS headers: BLAS is found at run time).  It is optional: when it cannot be built the
install still succeeds and lstmviz uses its NumPy engine (``lstmviz.engine.cell``).
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Per-compiler optimisation flags; a failed build only costs the speed-up."""

    def build_extensions(self) -> None:
        unix = self.compiler.compiler_type != "msvc"
        for ext in self.extensions:
            # no FMA contraction: c = f * c_tm1 + i * g rounds exactly as NumPy's
            # multiply-then-add (the app shows the two terms summing to c)
            ext.extra_compile_args = (
                ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
                if unix
                else ["/O2", "/fp:precise"]
            )
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "lstmviz.engine._lstm_kernel",
            sources=["lstmviz/engine/_lstm_kernel.c"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
