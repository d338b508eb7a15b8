"""``lstmviz corpus trace|find|stats|info|convert`` on a bundled example model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lstmviz.analysis import find_pattern, open_corpus, select_units
from lstmviz.cli import main
from lstmviz.examples import get_example


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """char_textgen traced over 60 random sequences of 40 characters."""
    tmp = tmp_path_factory.mktemp("cli")
    vocab = len(get_example("char_textgen").info.vocab)
    ids = np.random.default_rng(0).integers(1, vocab, (60, 40))
    np.save(tmp / "ids.npy", ids)
    store = tmp / "c.zarr"
    assert (
        main(
            [
                "corpus",
                "trace",
                "char_textgen",
                "--input",
                str(tmp / "ids.npy"),
                "--out",
                str(store),
            ]
        )
        == 0
    )
    return tmp, store, ids


def test_trace_writes_the_store(traced, capsys):
    _tmp, store, ids = traced
    st = open_corpus(store)
    assert st.n_steps == ids.size and st.complete and st.n_sequences == 60
    assert st.manifest["model"]["name"] == "char_textgen"
    assert st.tokenizer["kind"] == "chars" and st.tokenizer["vocab"]
    np.testing.assert_array_equal(np.asarray(st.inputs()[:]), ids.ravel())


def test_find_prints_the_ranked_matches(traced, capsys):
    _tmp, store, _ids = traced
    st = open_corpus(store)
    h = np.asarray(st.array()[:, 100:103]).astype(np.float32)
    unit = int(np.argmax(h.min(axis=1)))
    thr = float(h[unit].min())
    capsys.readouterr()
    assert (
        main(
            [
                "corpus",
                "find",
                str(store),
                "--range",
                "100:103",
                "--threshold",
                f"{thr:.4f}",
                "--units",
                f"{unit}",
                "--max-matches",
                "5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    res = find_pattern(st, [unit], 100, 103, float(f"{thr:.4f}"), max_matches=5)
    assert f"{res.n_matches:,} matching ranges" in out
    rows = [ln for ln in out.splitlines() if re.match(r"\s+\d+\s+\d+\s+\d+\s+\d+\s", ln)]
    assert len(rows) == len(res.matches)
    for ln, m in zip(rows, res.matches, strict=True):
        assert f"{m.start}:{m.stop}" in ln and "[" in ln
    # without --units: the units on over the range, as select_units picks them
    sel = select_units(st, 100, 103, 0.05)
    code = main(["corpus", "find", str(store), "--range", "100:103", "--threshold", "0.05"])
    out = capsys.readouterr().out
    if sel:
        assert code == 0 and out.startswith(f"units {', '.join(map(str, sel))} >= 0.05")
    else:
        assert code == 1 and "no unit is >= 0.05" in out


def test_find_takes_units_as_one_list_or_several_words(traced, capsys):
    """`--units 3,17,40-42` and `--units 3 17 40-42` name the same units."""
    _tmp, store, _ids = traced
    outs = []
    for units in (["0,1,2-3"], ["0", "1", "2-3"], ["0", "1,2", "3"]):
        capsys.readouterr()
        code = main(["corpus", "find", str(store), "--range", "100:103", "--threshold", "-0.99",
                     "--units", *units])  # fmt: skip
        out = capsys.readouterr().out
        assert code in (0, 1), out
        outs.append(out[out.index("units ") :].split(" (")[0])  # the line without its timing
    assert outs[0].startswith("units 0, 1, 2, 3 ") and len(set(outs)) == 1, outs


def test_stats_info_and_seq_len(traced, capsys, tmp_path):
    _tmp, store, ids = traced
    capsys.readouterr()
    assert main(["corpus", "stats", str(store), "--threshold", "0.3"]) == 0
    out = capsys.readouterr().out
    assert f"over {ids.size:,} traced positions" in out and "%" in out
    assert main(["corpus", "info", str(store), "--manifest"]) == 0
    out = capsys.readouterr().out
    assert "60 sequences" in out and '"weights_sha256"' in out
    np.save(tmp_path / "stream.npy", ids.ravel())
    assert (
        main(
            [
                "corpus",
                "trace",
                "char_textgen",
                "--input",
                str(tmp_path / "stream.npy"),
                "--seq-len",
                "25",
                "--out",
                str(tmp_path / "s.zarr"),
                "--dtype",
                "float32",
            ]
        )
        == 0
    )
    st = open_corpus(tmp_path / "s.zarr")
    assert st.n_sequences == 96 and st.dtype == "float32"


def test_convert_an_older_folder(capsys, tmp_path):
    from .helpers import make_model
    from .test_corpus import _legacy_folder

    m = make_model(vocab=20, embed=4, units=6, head=None, seed=1)
    seqs = [np.arange(n) % 20 for n in (9, 14)]
    _legacy_folder(tmp_path / "old", m, seqs)
    assert (
        main(["corpus", "convert", str(tmp_path / "old"), "--out", str(tmp_path / "n.zarr")]) == 0
    )
    new = open_corpus(tmp_path / "n.zarr")
    np.testing.assert_array_equal(new.window(0, 23), open_corpus(tmp_path / "old").window(0, 23))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["find", "S", "--range", "9:3", "--threshold", "0.1"], "--range: expected A:B"),
        (["find", "S", "--range", "1:3", "--threshold", "0.1", "--units", "a"], "--units"),
        (["trace", "char_textgen", "--input", "x.txt", "--out", "o.zarr"], "expected a .npy"),
        (["find", "nowhere.zarr", "--range", "1:3", "--threshold", "0.1"], "does not exist"),
    ],
)
def test_errors_exit_2_with_a_message(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["corpus", *argv]) == 2
    assert message in capsys.readouterr().err
