"""``lstmviz attribute|ablate|patch|connectivity|fixed-points``: headless, on bundled examples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstmviz.cli import main
from lstmviz.export.analysis_cli import parse_target

ADD = ["--text", "0110111 + 0000001"]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_attribute_prints_scores_and_writes(capsys, tmp_path):
    text = "mary had a little lamb its fleece was white as"
    code, out, _ = run(
        capsys,
        "attribute",
        "word_lm",
        "--text",
        text,
        "--target",
        "-1,snow",
        "--out",
        str(tmp_path / "ig.json"),
    )
    assert code == 0
    assert "integrated gradients of 'snow'" in out and "completeness error" in out
    data = json.loads((tmp_path / "ig.json").read_text())
    assert data["tokens"][-1] == "as" and len(data["scores"][0]) == 10
    code, out, _ = run(
        capsys,
        "attribute",
        "digit_sum",
        "--text",
        "4 7 3",
        "--target",
        "4",
        "--method",
        "lrp",
        "--out",
        str(tmp_path / "lrp.svg"),
    )
    assert code == 0 and "<text" in (tmp_path / "lrp.svg").read_text()


def test_ablate_and_scan(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "ablate",
        "binary_addition",
        *ADD,
        "--units",
        "2",
        "--mode",
        "mean",
        "--target",
        "3,0",
    )
    assert code == 0 and "cell of unit 2 := corpus mean" in out and "->" in out
    # one ablation written out: its figure, and its numbers as JSON
    for name in ("one.png", "one.json"):
        code, out, _ = run(
            capsys, "ablate", "binary_addition", *ADD, "--units", "2", "--out", str(tmp_path / name)
        )
        assert code == 0 and "largest output change" in out
    assert (tmp_path / "one.png").stat().st_size > 1000
    data = json.loads((tmp_path / "one.json").read_text())
    assert data["intervention"]["units"] == [2] and data["intervention"]["mode"] == "zero"
    assert np.shape(data["output_before"]) == np.shape(data["output_after"])
    assert data["output_before"] != data["output_after"]
    code, out, _ = run(
        capsys,
        "ablate",
        "binary_addition",
        *ADD,
        "--target",
        "3,0",
        "--scan",
        "--mode",
        "mean",
        "--space",
        "logit",
        "--out",
        str(tmp_path / "scan.png"),
    )
    assert code == 0 and out.splitlines()[1].split()[1] == "2"  # the carry unit first
    assert (tmp_path / "scan.png").stat().st_size > 1000


def test_patch_connectivity_fixed_points(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "patch",
        "binary_addition",
        "--clean",
        "0110111 + 0000001",
        "--corrupted",
        "0110110 + 0000001",
        "--target",
        "3,0",
        "--space",
        "logit",
        "--out",
        str(tmp_path / "p.json"),
    )
    assert code == 0 and "cell" in out
    assert json.loads((tmp_path / "p.json").read_text())["quantities"][0] == "forget_gate"
    code, out, _ = run(capsys, "connectivity", "word_lm", "--text", "mary had a", "--unit", "lamb")
    assert code == 0 and out.count("t=") == 3
    code, out, _ = run(capsys, "fixed-points", "flip_flop", "--out", str(tmp_path / "fp.pdf"))
    assert code == 0 and out.startswith("8 stable")


def test_errors_are_messages_not_tracebacks(capsys, tmp_path):
    code, _, err = run(capsys, "attribute", "word_lm", "--text", "mary had", "--target", "-1,zebra")
    assert code == 2 and "neither an output index nor a token" in err
    code, _, err = run(capsys, "ablate", "binary_addition", *ADD)
    assert code == 2 and "--units" in err
    (tmp_path / "x.png").write_bytes(b"")
    code, _, err = run(
        capsys, "connectivity", "word_lm", "--text", "mary", "--out", str(tmp_path / "x.png")
    )
    assert code == 2 and "pass --force" in err
    code, _, err = run(capsys, "ablate", "binary_addition", *ADD, "--units", "1", "--t", "a:b")
    assert code == 2 and "--t: expected a step" in err


def test_parse_target():
    assert parse_target("4") == (-1, 4)
    assert parse_target("3,0") == (3, 0)
    with pytest.raises(Exception, match="expected 'k' or 't,k'"):
        parse_target("1,2,3")
