"""The ``lstmviz`` command.

``lstmviz [MODEL] [--input X] [--text T] [--layer NAME] [--step T] [--screenshot OUT.png]``
opens the app (or renders it headless); subcommands do the rest without a window:

- ``lstmviz trace MODEL --input X.npy`` prints a summary of the trace
- ``lstmviz info MODEL`` prints the model's layers
- ``lstmviz train TASK ...`` trains an example model (TensorFlow extra)
- ``lstmviz export MODEL ... --out OUT.{png,svg,pdf,gif,mp4,npz,csv,json}``
- ``lstmviz attribute|ablate|patch|connectivity|fixed-points MODEL ...``: gradients,
  interventions and dynamics (:mod:`lstmviz.export.analysis_cli`)
- ``lstmviz corpus trace|find|stats|info|convert ...`` traces a corpus into Zarr and searches it
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _info(argv: list[str]) -> int:
    import argparse

    from .io import load_model

    p = argparse.ArgumentParser(prog="lstmviz info", description="Show a model's layers.")
    p.add_argument("model")
    a = p.parse_args(argv)
    m = load_model(a.model)
    print(f"{a.model}: {m.name} ({m.format}), {m.n_params} parameters")
    for row in m.summary():
        print(f"  {row['name']:<24} {row['kind']:<20} {row['params']:>9}  {row['description']}")
    print("LSTM layers traced:", ", ".join(m.lstm_trace_names))
    return 0


def _trace(argv: list[str]) -> int:
    import argparse

    import numpy as np

    from .io import load_model
    from .io.inputs import load_input

    p = argparse.ArgumentParser(
        prog="lstmviz trace", description="Trace a model on an input and print a summary."
    )
    p.add_argument("model")
    p.add_argument("--input", help="input .npy or .csv, or .npz with one array per model input")
    p.add_argument("--text", help="text or digits, tokenised with the model's vocabulary")
    a = p.parse_args(argv)
    m = load_model(a.model)
    x = load_input(m, path=a.input, text=a.text)
    tr = m.trace(x)
    outs = tr.output if isinstance(tr.output, list) else [tr.output]
    print("output shape " + ", ".join(str(np.shape(o)) for o in outs))
    for lt in tr.layers:
        print(
            f"{lt.name}: units={lt.units} T={lt.timesteps} batch={lt.batch_size} "
            f"mean f={lt.forget_gate.mean():.3f} i={lt.input_gate.mean():.3f} "
            f"o={lt.output_gate.mean():.3f} |c|max={np.abs(lt.cell).max():.3f}"
        )
    return 0


def _lazy(module: str, func: str = "main") -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        import importlib

        mod = importlib.import_module(module, __package__)
        return int(getattr(mod, func)(argv) or 0)

    return run


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "info": _info,
    "trace": _trace,
    "train": _lazy(".train.cli"),
    "export": _lazy(".export.cli"),
    "attribute": _lazy(".export.analysis_cli", "attribute_main"),
    "ablate": _lazy(".export.analysis_cli", "ablate_main"),
    "patch": _lazy(".export.analysis_cli", "patch_main"),
    "connectivity": _lazy(".export.analysis_cli", "connectivity_main"),
    "fixed-points": _lazy(".export.analysis_cli", "fixed_points_main"),
    "corpus": _lazy(".analysis.corpus.cli"),
}


def main(argv: list[str] | None = None) -> int:
    from .errors import LstmvizError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return SUBCOMMANDS[argv[0]](argv[1:])
        if argv and argv[0] in ("-V", "--version"):
            from ._version import __version__

            print(f"lstmviz {__version__}")
            return 0
        from .app.main import main as app_main

        return int(app_main(argv) or 0)
    except LstmvizError as e:
        print(f"lstmviz: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
