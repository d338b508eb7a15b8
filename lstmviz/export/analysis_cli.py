"""The causal analyses from the command line, headless: ``lstmviz attribute``, ``ablate``,
``patch``, ``connectivity`` and ``fixed-points``.

    lstmviz attribute MODEL [--text T | --input X.npy] --target [t,]k [--method ig]
        [--space output|logit|log] [--out fig.png|.svg|.pdf|.json]
    lstmviz ablate MODEL [--text T | --input X] --layer L --units 2,5 [--quantity cell]
        [--mode zero|mean|VALUE] [--t 3 | --t 3:7] [--target [t,]k] [--scan] [--out ...]
    lstmviz patch MODEL --clean T --corrupted T --target [t,]k [--layer L] [--out ...]
    lstmviz connectivity MODEL [--text T | --input X] [--unit k] [--out ...]
    lstmviz fixed-points MODEL [--layer L] [--x-const "0 0 0"] [--n-init N] [--input X]
        [--out fig.png|.json]

Each prints what it found; ``--out`` writes the figure (PNG/SVG/PDF, ``--style paper|slide``)
or the numbers (``.json``). ``MODEL`` is a file or the name of a bundled example; a target's
``k`` may be a word or character of the model's vocabulary (``--target -1,snow``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, LstmvizError
from .style import STYLES

EPILOG = {
    "attribute": (
        "examples:\n"
        "  lstmviz attribute word_lm --text 'mary had a little lamb its fleece was white as' "
        "--target -1,snow --method ig --out ig.png\n"
        "  lstmviz attribute digit_sum --text '4 7 3 9 1' --target 4 --method lrp"
    ),
    "ablate": (
        "examples:\n"
        "  lstmviz ablate binary_addition --text '0110111 + 0000001' --layer lstm --units 2 "
        "--mode mean\n"
        "  lstmviz ablate binary_addition --text '0110111 + 0000001' --target 3,0 --scan "
        "--mode mean --out scan.png"
    ),
    "patch": (
        "example:\n"
        "  lstmviz patch binary_addition --clean '0110111 + 0000001' --corrupted "
        "'0110110 + 0000001' --target 3,0 --space logit --out patch.png"
    ),
    "connectivity": (
        "example:\n  lstmviz connectivity word_lm --text 'mary had a little lamb' --out conn.png"
    ),
    "fixed-points": ("example:\n  lstmviz fixed-points flip_flop --out fixed_points.png"),
}


def _negative_targets(argv: list[str]) -> list[str]:
    """``--target -1,snow`` as ``--target=-1,snow`` (argparse takes ``-1,snow`` for an
    option)."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in ("--target", "--unit"):
            nxt = next(it, None)
            if nxt is None:
                out.append(arg)
            else:
                out.append(f"{arg}={nxt}")
        else:
            out.append(arg)
    return out


def _parser(cmd: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"lstmviz {cmd}",
        description=description,
        epilog=EPILOG[cmd],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model file (.keras/.h5/...) or the name of a bundled example")
    return p


def _input_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="X.npy", help="input array (.npy or .csv)")
    src.add_argument("--text", help="input text/digits/bits, tokenised with the model's vocabulary")
    p.add_argument("--batch-index", type=int, default=0, metavar="B", help="batch item shown (0)")


def _out_args(p: argparse.ArgumentParser, figure: bool = True) -> None:
    kinds = ".png, .svg, .pdf (figure) or .json (numbers)" if figure else ".json"
    p.add_argument("--out", "-o", metavar="OUT", help=f"write {kinds}")
    p.add_argument("--style", choices=sorted(STYLES), default="paper", help="figure style")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def _target_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument(
        "--target",
        required=required,
        metavar="[t,]k",
        help="output unit k at step t (t = -1: the last step; k may be a vocabulary token)",
    )
    p.add_argument(
        "--space",
        choices=("output", "logit", "log"),
        default=None,
        help="the output itself, the head's pre-activation, or its log",
    )


def _load(name: str) -> tuple[Any, Any, Path]:
    from ..io import load_model
    from ..io.meta import load_info
    from .cli import resolve_model

    path = resolve_model(name)
    return load_model(path), load_info(path), path


def _input(model: Any, info: Any, a: argparse.Namespace) -> Any:
    from ..io.inputs import load_input

    if getattr(a, "input", None) is not None:
        return load_input(model, path=a.input, info=info)
    if getattr(a, "text", None) is not None:
        return load_input(model, text=a.text, info=info)
    return load_input(model, info=info)


def parse_target(text: str, info: Any = None) -> tuple[int, int]:
    """``"k"`` / ``"t,k"`` -> ``(t, k)``; ``k`` may be a token of ``info``'s vocabulary."""
    parts = [s.strip() for s in str(text).split(",")]
    if len(parts) == 1:
        parts = ["-1", parts[0]]
    if len(parts) != 2:
        raise InputError(f"--target: expected 'k' or 't,k'; got {text!r}")
    try:
        t = int(parts[0])
    except ValueError:
        raise InputError(f"--target: the step t must be an integer; got {parts[0]!r}") from None
    try:
        return t, int(parts[1])
    except ValueError:
        pass
    vocab = list(info.vocab) if info is not None and info.vocab else []
    labels = list(info.output_labels) if info is not None and info.output_labels else []
    for names in (vocab, labels):
        if parts[1] in names:
            return t, names.index(parts[1])
    raise InputError(
        f"--target: {parts[1]!r} is neither an output index nor a token of the model's vocabulary"
    )


def _target_label(t: int, k: int, info: Any, n_outputs: int | None = None) -> str:
    """``'snow'`` / ``'snow' at t=5`` / ``output 0 at t=3``: names from the model's info when
    they name the outputs one to one."""
    names = (info.output_labels or info.vocab) if info is not None else []
    if n_outputs is not None and len(names) != n_outputs:
        names = []  # e.g. the adder's labels "0", "1" are the values of one sum bit
    name = repr(names[k]) if names and 0 <= k < len(names) else f"output {k}"
    return f"{name} at t={t}" if t != -1 else name


def _n_outputs(model: Any, x: Any) -> int:
    from ..analysis.gradients import per_step_output

    tr = model.trace(x, step_outputs=False)
    out = np.asarray(tr.output if not isinstance(tr.output, list) else tr.output[0])
    if per_step_output(model, out, tr.layers[-1].timesteps):
        return int(np.prod(out.shape[2:])) if out.ndim > 2 else 1
    return int(np.prod(out.shape[1:]))


def _tokens(model: Any, x: Any, info: Any, b: int) -> list[str]:
    from ..io.inputs import token_labels

    return token_labels(model, x, info, b=b)


def _check_out(a: argparse.Namespace, allowed: tuple[str, ...]) -> Path | None:
    if a.out is None:
        return None
    p = Path(a.out)
    ext = p.suffix.lower().lstrip(".")
    if ext not in allowed:
        raise InputError(f"--out {p}: expected {', '.join('.' + e for e in allowed)}")
    if p.exists() and not a.force:
        raise InputError(f"--out {p} exists; pass --force to overwrite it")
    if not p.parent.exists():
        raise InputError(f"--out {p}: directory {p.parent} does not exist")
    return p


def _write(out: Path, fig_fn: Any, data: dict[str, Any]) -> None:
    if out.suffix.lower() == ".json":
        from ..io.atomic import atomic_open

        with atomic_open(out, "w") as fh:
            json.dump(data, fh, indent=1)
    else:
        from .analysis_figures import save_figure

        save_figure(fig_fn(), out)
    print(f"wrote {out}")


def _bar(v: float, scale: float, width: int = 20) -> str:
    n = round(width * abs(v) / scale) if scale > 0 else 0
    return ("+" if v >= 0 else "-") * n


# ------------------------------------------------------------------------------------------
def attribute_main(argv: list[str]) -> int:
    from dataclasses import replace

    from ..analysis.attribution import METHODS, attribute

    p = _parser("attribute", "Attribute one output to the input tokens and the units.")
    _input_args(p)
    _target_args(p)
    p.add_argument("--method", choices=METHODS, default="ig", help="attribution method (ig)")
    p.add_argument("--baseline", help="integrated gradients' baseline: a number or a token id")
    p.add_argument("--steps", type=int, default=64, help="integrated gradients' path points (64)")
    p.add_argument("--layer", help="the LSTM layer whose units are shown")
    _out_args(p)
    a = p.parse_args(_negative_targets(argv))
    out = _check_out(a, ("png", "svg", "pdf", "json"))
    model, info, _ = _load(a.model)
    x = _input(model, info, a)
    t, k = parse_target(a.target, info)
    baseline: Any = None
    if a.baseline is not None:
        baseline = int(a.baseline) if model.takes_tokens else float(a.baseline)
    r = attribute(model, x, (t, k), a.method, space=a.space, baseline=baseline, steps=a.steps)
    r = replace(r, target=_target_label(t, k, info, _n_outputs(model, x)))
    b = a.batch_index
    if not 0 <= b < r.scores.shape[0]:
        raise InputError(f"--batch-index {b} outside 0..{r.scores.shape[0] - 1}")
    tokens = _tokens(model, x, info, b)
    print(f"{r.title} = {r.value[b]:.6g} ({r.space})")
    scale = float(np.abs(r.scores[b]).max())
    for t_, (tok, s) in enumerate(zip(tokens, r.scores[b], strict=True)):
        print(f"  {t_:>4}  {tok[:12]:<12} {s:+.5f}  {_bar(float(s), scale)}")
    for name, v in r.check.items():
        print(f"{name.replace('_', ' ')}: {float(np.asarray(v)[b]):.3g}")
    if out is not None:
        from .analysis_figures import attribution_figure

        data = {
            "method": r.method,
            "target": r.target,
            "space": r.space,
            "value": r.value.tolist(),
            "tokens": tokens,
            "scores": r.scores.tolist(),
            "check": {k_: np.asarray(v).tolist() for k_, v in r.check.items()},
        }
        _write(
            out,
            lambda: attribution_figure(r, tokens, b=b, layer=a.layer, style=a.style),
            data,
        )
    return 0


def _t_window(text: str | None) -> Any:
    if text is None:
        return None
    if ":" in text:
        lo, hi = text.split(":", 1)
        try:
            return slice(int(lo) if lo else None, int(hi) if hi else None)
        except ValueError:
            raise InputError(f"--t: expected a step or START:STOP; got {text!r}") from None
    try:
        return int(text)
    except ValueError:
        raise InputError(f"--t: expected a step or START:STOP; got {text!r}") from None


def _mode(text: str) -> Any:
    if text in ("zero", "mean"):
        return text
    try:
        return float(text)
    except ValueError:
        raise InputError(f"--mode: expected zero, mean or a number; got {text!r}") from None


def ablate_main(argv: list[str]) -> int:
    from ..analysis.interventions import (
        ablation_scan,
        evaluate,
        intervene,
        intervention_effect,
        make_intervention,
    )
    from ..export.selection import parse_units

    p = _parser("ablate", "Ablate or clamp units and see the output change; or scan every unit.")
    _input_args(p)
    p.add_argument("--layer", default="0", help="LSTM layer (name or index; the first)")
    p.add_argument("--units", metavar="U,...", help="units to ablate, like 2 or 0,3 or 0-7")
    p.add_argument(
        "--quantity",
        default="cell",
        help="cell (default), hidden, input_gate, forget_gate, output_gate, candidate",
    )
    p.add_argument("--mode", default="zero", help="zero (default), mean, or a value to clamp to")
    p.add_argument("--t", metavar="T|A:B", help="the step or steps (default: every step)")
    _target_args(p, required=False)
    p.add_argument("--scan", action="store_true", help="ablate every unit in turn and rank them")
    _out_args(p)
    a = p.parse_args(_negative_targets(argv))
    out = _check_out(a, ("png", "svg", "pdf", "json"))
    model, info, _ = _load(a.model)
    x = _input(model, info, a)
    layer: Any = int(a.layer) if a.layer.lstrip("-").isdigit() else a.layer
    mode, window = _mode(a.mode), _t_window(a.t)
    space = a.space or "output"
    if a.scan:
        if a.target is None:
            raise InputError("--scan ranks units by their effect on one output: give --target")
        t, k = parse_target(a.target, info)
        scan = ablation_scan(model, x, (t, k), layer, a.quantity, mode, window, space=space)
        label = _target_label(t, k, info, _n_outputs(model, x))
        print(
            f"ablation scan of {scan.layer} {scan.quantity} := {scan.mode}: change of "
            f"{label} ({space}), clean {scan.clean.mean():.5g}"
        )
        for group, change in scan.ranking()[:20]:
            i = scan.groups.index(group)
            print(
                f"  unit {','.join(map(str, group)):<8} mean |change| {change:.5f}  "
                f"mean change {scan.signed_effect[i]:+.5f}"
            )
        if out is not None:
            from .analysis_figures import ablation_figure

            data = {
                "layer": scan.layer,
                "quantity": scan.quantity,
                "mode": scan.mode,
                "target": scan.target,
                "groups": [list(g) for g in scan.groups],
                "effect": scan.effect.tolist(),
                "signed_effect": scan.signed_effect.tolist(),
            }
            _write(out, lambda: ablation_figure(scan, style=a.style), data)
        return 0
    if a.units is None:
        raise InputError("--units: which units to ablate (or --scan to try every one)")
    units = parse_units(a.units)
    iv = make_intervention(model, x, layer, units, a.quantity, mode, window)
    before, after = intervene(model, x, []), intervene(model, x, [iv])
    eff = intervention_effect(before, after)
    b = a.batch_index
    print(iv.describe())
    fb, fa = np.asarray(before.output), np.asarray(after.output)
    print(f"output before: {np.array2string(fb[b], precision=3, max_line_width=100)}")
    print(f"output after:  {np.array2string(fa[b], precision=3, max_line_width=100)}")
    print(f"largest output change: {float(np.abs(eff.final_diff[b]).max()):.5g}")
    if a.target is not None:
        t, k = parse_target(a.target, info)
        v0 = evaluate(model, x, [], (t, k), space)[b]
        v1 = evaluate(model, x, [iv], (t, k), space)[b]
        print(f"{_target_label(t, k, info, _n_outputs(model, x))} ({space}): {v0:.5g} -> {v1:.5g}")
    if out is not None:
        from .analysis_figures import intervention_figure

        tokens = _tokens(model, x, info, b)
        data = {
            "intervention": iv.to_dict(),
            "output_before": fb.tolist(),
            "output_after": fa.tolist(),
        }
        _write(
            out,
            lambda: intervention_figure(eff, iv.layer, iv.quantity, tokens, b=b, style=a.style),
            data,
        )
    return 0


def patch_main(argv: list[str]) -> int:
    from ..analysis.patching import activation_patching
    from ..io.inputs import load_input

    p = _parser("patch", "Activation patching between a clean and a corrupted input.")
    p.add_argument("--clean", required=True, help="the clean input (text)")
    p.add_argument("--corrupted", required=True, help="the corrupted input (text), same length")
    _target_args(p)
    p.add_argument("--layer", default="0", help="LSTM layer (name or index; the first)")
    p.add_argument("--unit-quantity", default="cell", help="quantity of the unit x t map (cell)")
    p.add_argument("--direction", choices=("denoise", "noise"), default="denoise")
    _out_args(p)
    a = p.parse_args(_negative_targets(argv))
    out = _check_out(a, ("png", "svg", "pdf", "json"))
    model, info, _ = _load(a.model)
    clean = load_input(model, text=a.clean, info=info)
    corrupt = load_input(model, text=a.corrupted, info=info)
    t, k = parse_target(a.target, info)
    layer: Any = int(a.layer) if a.layer.lstrip("-").isdigit() else a.layer
    r = activation_patching(
        model,
        clean,
        corrupt,
        (t, k),
        layer,
        unit_quantity=a.unit_quantity,
        direction=a.direction,
        space=a.space or "output",
    )
    label = _target_label(t, k, info, _n_outputs(model, clean))
    print(
        f"{label}: clean {r.clean_value:.5g}, corrupted "
        f"{r.corrupted_value:.5g}; share restored by patching one value of {r.layer}:"
    )
    tokens = _tokens(model, clean, info, 0)
    print("  " + " " * 14 + " ".join(f"{tok[:5]:>6}" for tok in tokens))
    for q, row in zip(r.quantities, r.by_quantity, strict=True):
        print(f"  {q:<14}" + " ".join(f"{v:6.2f}" for v in row))
    for q, tt, v in r.top(3):
        print(f"  most: {q} at t={tt} ({tokens[tt]}): {v:.2f}")
    if out is not None:
        from .analysis_figures import patching_figure

        data = {
            "target": r.target,
            "clean_value": r.clean_value,
            "corrupted_value": r.corrupted_value,
            "quantities": list(r.quantities),
            "by_quantity": r.by_quantity.tolist(),
            "by_unit": None if r.by_unit is None else r.by_unit.tolist(),
            "tokens": tokens,
        }
        _write(out, lambda: patching_figure(r, tokens, style=a.style), data)
    return 0


def connectivity_main(argv: list[str]) -> int:
    from ..analysis.gradients import connectivity

    p = _parser("connectivity", "How strongly each output step depends on each input step.")
    _input_args(p)
    p.add_argument("--unit", help="one output unit (index or vocabulary token); all by default")
    p.add_argument("--space", choices=("output", "logit", "log"), default="output")
    _out_args(p)
    a = p.parse_args(_negative_targets(argv))
    out = _check_out(a, ("png", "svg", "pdf", "json"))
    model, info, _ = _load(a.model)
    x = _input(model, info, a)
    unit = None if a.unit is None else parse_target(a.unit, info)[1]
    c = connectivity(model, x, unit, batch=a.batch_index, space=a.space)
    tokens = _tokens(model, x, info, a.batch_index)
    print(f"‖∂y_t/∂x_s‖ (rows: output steps {c.output_steps[0]}..{c.output_steps[-1]}):")
    for row, t in zip(c.matrix, c.output_steps, strict=True):
        print(f"  t={int(t):<4}" + " ".join(f"{v:7.3g}" for v in row))
    if out is not None:
        from .analysis_figures import connectivity_figure

        data = {
            "matrix": c.matrix.tolist(),
            "output_steps": c.output_steps.tolist(),
            "unit": c.unit,
            "tokens": tokens,
        }
        _write(out, lambda: connectivity_figure(c, tokens, style=a.style), data)
    return 0


def fixed_points_main(argv: list[str]) -> int:
    from ..analysis.dynamics import fixed_point_summary, fixed_points, state_pca

    p = _parser("fixed-points", "Fixed points of an LSTM's state map under a constant input.")
    p.add_argument("--layer", default="0", help="LSTM layer (name or index; the first)")
    p.add_argument("--x-const", metavar="VALUES", help="the constant input (zeros / token 0)")
    p.add_argument("--n-init", type=int, default=256, help="starting states (256)")
    p.add_argument("--tol", type=float, default=1e-10, help="q below which a point is fixed")
    p.add_argument("--slow", action="store_true", help="also report slow points")
    p.add_argument("--seed", type=int, default=0, help="seeds the starting states")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="X.npy", help="input whose states seed the search")
    src.add_argument("--text", help="input text whose states seed the search and are drawn")
    _out_args(p)
    a = p.parse_args(_negative_targets(argv))
    out = _check_out(a, ("png", "svg", "pdf", "json"))
    model, info, _ = _load(a.model)
    x = _input(model, info, a)
    layer: Any = int(a.layer) if a.layer.lstrip("-").isdigit() else a.layer
    x_const: Any = None
    if a.x_const is not None:
        vals = [float(v) for v in a.x_const.replace(",", " ").split()]
        x_const = int(vals[0]) if model.takes_tokens else np.asarray(vals, np.float32)
    pts = fixed_points(model, layer, x_const, a.n_init, a.tol, inits=x, slow=a.slow, seed=a.seed)
    summary = fixed_point_summary(pts)
    print(", ".join(f"{n} {kind}" for kind, n in summary.items()) or "no fixed points found")
    for i, pt in enumerate(pts):
        print(
            f"  #{i:<3} {pt.kind:<8} q={pt.speed:.1e}  |λ|max={pt.spectral_radius:.3f}  "
            f"unstable directions: {pt.n_unstable}"
        )
    if out is not None:
        from .analysis_figures import state_space_figure

        tr = model.trace(x)
        name = model.lstm_trace_names[layer] if isinstance(layer, int) else layer
        pca = state_pca(tr, name, "hidden")
        data = {"points": [pt.to_dict() for pt in pts], "summary": summary}
        _write(out, lambda: state_space_figure(pca, pts, b=0, style=a.style), data)
    return 0


COMMANDS = {
    "attribute": attribute_main,
    "ablate": ablate_main,
    "patch": patch_main,
    "connectivity": connectivity_main,
    "fixed-points": fixed_points_main,
}


def main(argv: list[str] | None = None) -> int:
    """``python -m lstmviz.export.analysis_cli COMMAND ...``"""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(f"usage: lstmviz {{{','.join(COMMANDS)}}} MODEL ...", file=sys.stderr)
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main())
    except LstmvizError as e:
        print(f"lstmviz: error: {e}", file=sys.stderr)
        sys.exit(2)
