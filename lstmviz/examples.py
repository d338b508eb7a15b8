"""The bundled examples: ``lstmviz/assets/examples/<name>.keras`` with ``<name>.lstmviz.json``.

The models are produced by ``lstmviz.train`` (``python -m lstmviz.train.make_examples``
regenerates them deterministically).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .io.meta import ModelInfo, load_info

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLES_DIR = ASSETS / "examples"
#: The example ``lstmviz`` opens when started without a model.
DEFAULT_EXAMPLE = "digit_sum"


@dataclass(frozen=True)
class Example:
    name: str
    path: Path
    info: ModelInfo | None

    @property
    def title(self) -> str:
        return (
            self.info.title
            if self.info and self.info.title
            else self.name.replace("_", " ").capitalize()
        )

    @property
    def description(self) -> str:
        return self.info.description if self.info else ""


def list_examples() -> list[Example]:
    """Every bundled example model, the default first, then by name."""
    if not EXAMPLES_DIR.is_dir():
        return []
    out = []
    for p in sorted(EXAMPLES_DIR.iterdir()):
        if p.suffix in (".keras", ".h5") and not p.name.startswith("."):
            out.append(Example(p.stem, p, load_info(p)))
    out.sort(key=lambda e: (e.name != DEFAULT_EXAMPLE, e.name))
    return out


def get_example(name: str) -> Example:
    from .errors import LstmvizError

    for e in list_examples():
        if e.name == name:
            return e
    names = ", ".join(e.name for e in list_examples()) or "(none bundled)"
    raise LstmvizError(f"no bundled example named {name!r}; examples: {names}")


def default_example() -> Example | None:
    ex = list_examples()
    return ex[0] if ex else None
