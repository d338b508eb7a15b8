"""``lstmviz export``: gate plots, animations and trace data from a model, headless.

    lstmviz export MODEL --input X.npy|--text "..." [--layer NAME] [--batch-index B]
        [--quantities forget_gate,input_gate,...] [--units 0,3,7] [--step T]
        [--style paper|slide] [--view heatmaps|diagram|bars] [--force]
        --out OUT.{png,svg,pdf,gif,mp4,npz,csv,json}
    lstmviz export LESSON.lstmviz-lesson --out handout.pdf|lesson.mp4

The format follows the extension of ``--out``. Figures show a grid of the six quantities
(units x time heatmaps with colour bars, the input tokens along the time axis) titled with
model, layer and timestep; GIF/MP4 have one frame per timestep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LstmvizError
from .formats import FORMATS, check_output
from .selection import parse_quantities, parse_units
from .style import STYLES


def _size(text: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in text.lower().replace("\u00d7", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected WIDTHxHEIGHT in inches like 7x4; got {text!r}"
        ) from None
    if w <= 0 or h <= 0 or w > 100 or h > 100:
        raise argparse.ArgumentTypeError(f"size must be within (0, 100] inches; got {text!r}")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    formats = "\n".join(f"  .{k:<5} {desc}" for k, (_, desc) in FORMATS.items())
    p = argparse.ArgumentParser(
        prog="lstmviz export",
        description="Export gate plots, stepping animations or trace data, without a window.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"formats (chosen by the extension of --out):\n{formats}\n\nexamples:\n"
        "  lstmviz export digit_sum.keras --text '4 7 3 9' --out gates.pdf\n"
        "  lstmviz export model.keras --input x.npy --style slide --out steps.mp4\n"
        "  lstmviz export model.keras --input x.npy --out trace.npz\n"
        "  lstmviz export digit_sum --view diagram --units 20 --step 1 --out cell.svg\n"
        "  lstmviz export lstmviz/assets/lessons/binary_addition.lstmviz-lesson --out handout.pdf",
    )
    p.add_argument(
        "model",
        help="model file (.keras/.h5), the name of a bundled example, or a lesson "
        "(.lstmviz-lesson: --out handout.pdf or lesson.mp4)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--input",
        metavar="X.npy",
        help="input array (.npy or .csv), or .npz with one array per model input",
    )
    src.add_argument("--text", help="input text/digits, tokenised with the model's vocabulary")
    p.add_argument("--layer", help="LSTM layer (figures: the first by default; data: all)")
    p.add_argument(
        "--batch-index",
        type=int,
        metavar="B",
        help="batch item (figures: 0 by default; data: all items by default)",
    )
    p.add_argument(
        "--quantities",
        metavar="Q,...",
        help="comma-separated: forget_gate,input_gate,output_gate,candidate,cell,"
        "hidden (or f,i,o,g,c,h); all six by default",
    )
    p.add_argument("--units", metavar="U,...", help="unit indices like 0,3,7 or 0-7")
    p.add_argument(
        "--step",
        type=int,
        metavar="T",
        help="figures: the current timestep (cursor, later steps dimmed)",
    )
    p.add_argument(
        "--style",
        choices=sorted(STYLES),
        default="paper",
        help="paper column (7 pt) or slide (16:9, 16 pt); default paper",
    )
    p.add_argument("--size", type=_size, metavar="WxH", help="figure size in inches, e.g. 7x4")
    p.add_argument("--dpi", type=float, help="pixels per inch for PNG and animation frames")
    p.add_argument("--fps", type=float, default=4.0, help="animation frames per second (4)")
    p.add_argument("--title", help="figure title instead of model, layer and timestep")
    p.add_argument(
        "--view",
        choices=("heatmaps", "diagram", "bars"),
        default="heatmaps",
        help="figures and animations: the six heatmaps (default), the LSTM cell diagram "
        "(--units 3: numbers for unit 3; no --units: a colour strip per wire for all units), "
        "or bars of all six quantities at --step for --units (default: the most active)",
    )
    p.add_argument("--values", action="store_true", help="JSON: include every value")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    p.add_argument(
        "--out",
        "-o",
        required=True,
        metavar="OUT.ext",
        help="output file; the format follows the extension",
    )
    return p


def resolve_model(name: str) -> Path:
    """A model path (a file, a TF1 checkpoint prefix, ...), or a bundled example by name."""
    from ..io.more_formats import resolve_model_path

    p = Path(name).expanduser()
    if p.exists() or p.suffix:
        return resolve_model_path(p)
    from ..examples import get_example

    return get_example(name).path


def _export_lesson(a: argparse.Namespace) -> int:
    """``lstmviz export LESSON.lstmviz-lesson --out handout.pdf|lesson.mp4``."""
    from .lesson import export_lesson

    show = not a.quiet and sys.stderr.isatty()

    def progress(i: int, n: int) -> None:
        if show:
            print(f"\rstep {i}/{n}", end="" if i < n else "\n", file=sys.stderr, flush=True)

    path = export_lesson(a.model, a.out, force=a.force, progress=progress)
    if not a.quiet:
        kind = "PDF handout" if path.suffix == ".pdf" else "MP4 video"
        print(f"wrote {path} ({kind}, {path.stat().st_size:,} bytes)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``lstmviz export``; returns 0, raises :class:`LstmvizError` for bad input."""
    a = build_parser().parse_args(argv)
    if a.model.endswith(".lstmviz-lesson"):
        return _export_lesson(a)
    # everything that can be checked before loading the model is checked first
    out, fmt = check_output(a.out, force=a.force)
    quantities = parse_quantities(a.quantities)
    units = parse_units(a.units)

    from ..io import load_model
    from ..io.inputs import load_input
    from ..io.meta import load_info
    from .api import export_trace
    from .data import Source

    model_path = resolve_model(a.model)
    model = load_model(model_path)
    info = load_info(model_path)
    if a.input is not None:
        x = load_input(model, path=a.input, info=info)
        kind = "file"
    elif a.text is not None:
        x = load_input(model, text=a.text, info=info)
        kind = "text"
    else:
        x = load_input(model, info=info)
        kind = "example"
    trace = model.trace(x)
    source = Source(
        model=model,
        model_path=model_path,
        input_kind=kind,
        input_path=a.input,
        input_text=a.text,
        info=info,
    )

    show = not a.quiet and sys.stderr.isatty() and fmt in ("gif", "mp4", "csv")

    def progress(i: int, n: int) -> None:
        if show:
            print(
                f"\r{fmt.upper()}: {i}/{n}",
                end="" if i < n else "\n",
                file=sys.stderr,
                flush=True,
            )

    if fmt in ("gif", "mp4") and a.step is not None and not a.quiet:
        print(
            "note: --step is ignored for animations (one frame per timestep)",
            file=sys.stderr,
        )
    try:
        path = export_trace(
            out,
            trace,
            source,
            layer=a.layer,
            batch=a.batch_index,
            quantities=quantities,
            units=units,
            step=None if fmt in ("gif", "mp4") else a.step,
            style=a.style,
            force=a.force,
            size=a.size,
            dpi=a.dpi,
            fps=a.fps,
            values=a.values,
            title=a.title,
            progress=progress,
            view=a.view,
        )
    except KeyboardInterrupt:
        if show:
            print(file=sys.stderr)
        raise
    if not a.quiet:
        print(f"wrote {path} ({FORMATS[fmt][1]}, {path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main())
    except LstmvizError as e:
        print(f"lstmviz export: error: {e}", file=sys.stderr)
        sys.exit(2)
