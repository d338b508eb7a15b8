"""Several model inputs from one .npz: lstmviz.io.input_files, the CLI's --input."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

import lstmviz
from lstmviz.cli import main as cli_main
from lstmviz.engine import layers as L
from lstmviz.engine.cell import LSTMWeights
from lstmviz.engine.model import Model, Node
from lstmviz.errors import InputError
from lstmviz.io.input_files import load_input_file, match_inputs, model_input_names, read_npz
from lstmviz.io.inputs import load_input


def _w(f, u, seed):
    rng = np.random.default_rng(seed)
    return LSTMWeights(
        rng.normal(0, 0.5, (f, 4 * u)), rng.normal(0, 0.5, (u, 4 * u)), rng.normal(0, 0.5, 4 * u)
    )


def _seq2seq() -> Model:
    """An engine encoder-decoder: the decoder LSTM starts from the encoder's (h, c)."""
    nodes = [
        Node(L.InputLayer("enc_in", (None, None, 3)), 0, []),
        Node(L.InputLayer("dec_in", (None, None, 2)), 0, []),
        Node(L.LSTM("encoder", _w(3, 4, 0), return_state=True), 0, [("enc_in", 0, 0)]),
        Node(
            L.LSTM("decoder", _w(2, 4, 1), return_sequences=True),
            0,
            [("dec_in", 0, 0)],
            {"initial_state": [("encoder", 0, 1), ("encoder", 0, 2)]},
        ),
    ]
    return Model("s2s", nodes, [("enc_in", 0, 0), ("dec_in", 0, 0)], [("decoder", 0, 0)])


def test_matched_by_name_in_any_order_and_by_order(tmp_path):
    m = _seq2seq()
    assert model_input_names(m) == ["enc_in", "dec_in"]
    rng = np.random.default_rng(0)
    enc, dec = rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 4, 2))
    np.savez(tmp_path / "named.npz", dec_in=dec, enc_in=enc)
    np.savez(tmp_path / "ordered.npz", enc, dec)
    np.savez_compressed(tmp_path / "one_seq.npz", enc_in=enc[0], dec_in=dec[0])
    want = m.trace([enc, dec]).output
    for name in ("named", "ordered"):
        x = load_input(m, path=tmp_path / f"{name}.npz")
        np.testing.assert_array_equal(x[0], enc)
        np.testing.assert_array_equal(x[1], dec)
        np.testing.assert_array_equal(m.trace(x).output, want)
    x = load_input_file(m, tmp_path / "one_seq.npz")  # a single sequence gets a batch axis
    assert [a.shape for a in x] == [(1, 6, 3), (1, 4, 2)]


def test_mismatches_name_the_inputs_and_the_arrays(tmp_path):
    m = _seq2seq()
    enc, dec = np.zeros((1, 6, 3)), np.zeros((1, 4, 2))
    np.savez(tmp_path / "typo.npz", enc_in=enc, decoder=dec)
    with pytest.raises(
        InputError,
        match=r"missing 'dec_in'; 'decoder' is not a model input.*"
        r"inputs: enc_in, dec_in; the file holds: enc_in \(1, 6, 3\), decoder",
    ):
        load_input(m, path=tmp_path / "typo.npz")
    np.savez(tmp_path / "three.npz", enc, dec, dec)
    with pytest.raises(InputError, match=r"3 array\(s\) for a model with 2 input\(s\)"):
        load_input(m, path=tmp_path / "three.npz")
    np.save(tmp_path / "one.npy", enc)
    with pytest.raises(InputError, match=r"the model has 2 inputs \(enc_in, dec_in\).*np.savez"):
        load_input_file(m, tmp_path / "one.npy")


def test_unsafe_or_broken_npz_files_are_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="object arrays are refused"):
        read_npz(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match=r"not a readable \.npz"):
        read_npz(tmp_path / "junk.npz")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(InputError, match=r"'notes.txt' is not a .npy array"):
        read_npz(tmp_path / "other.npz")
    # a member whose header declares more data than it holds
    np.savez(tmp_path / "ok.npz", x=np.zeros((4, 5), np.float32))
    with zipfile.ZipFile(tmp_path / "ok.npz") as zf:
        raw = zf.read("x.npy")
    with zipfile.ZipFile(tmp_path / "short.npz", "w") as zf:
        zf.writestr("x.npy", raw[:-8])
    with pytest.raises(InputError, match="truncated"):
        read_npz(tmp_path / "short.npz")
    # a header declaring a huge array is refused before anything is read
    hdr = raw[: raw.index(b"\n") + 1].replace(b"(4, 5)", b"(400000, 500000)")
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("x.npy", hdr + b"\0" * 64)
    with pytest.raises(lstmviz.LstmvizError, match=r"too large|memory budget"):
        read_npz(tmp_path / "huge.npz")
    with pytest.raises(InputError, match="no such input file"):
        read_npz(tmp_path / "absent.npz")


def test_a_single_input_model_takes_an_npz_too(tmp_path):
    nodes = [
        Node(L.InputLayer("x", (None, None, 3)), 0, []),
        Node(L.LSTM("lstm", _w(3, 4, 0)), 0, [("x", 0, 0)]),
    ]
    m = Model("one", nodes, [("x", 0, 0)], [("lstm", 0, 0)])
    np.savez(tmp_path / "a.npz", np.ones((5, 3)))
    assert load_input(m, path=tmp_path / "a.npz").shape == (1, 5, 3)
    assert match_inputs(m, {"x": np.ones((2, 5, 3))}).shape == (2, 5, 3)


def test_cli_trace_and_export_take_an_npz_for_a_keras_seq2seq(tmp_path, capsys):
    """The Keras lstm_seq2seq example: two inputs, on the command line."""
    pytest.importorskip("keras")
    from tests.zoo.keras_zoo import lstm_seq2seq

    km, (enc, dec), _ = lstm_seq2seq()
    path = tmp_path / "s2s.keras"
    km.save(path)
    m = lstmviz.load_model(path)
    names = model_input_names(m)
    np.savez(tmp_path / "in.npz", **{names[1]: dec, names[0]: enc})
    assert cli_main(["trace", str(path), "--input", str(tmp_path / "in.npz")]) == 0
    out = capsys.readouterr().out
    assert "output shape (2, 5, 11)" in out
    assert "units=16 T=7" in out and "units=16 T=5" in out
    assert (
        cli_main(
            [
                "export",
                str(path),
                "--input",
                str(tmp_path / "in.npz"),
                "--out",
                str(tmp_path / "t.npz"),
                "-q",
            ]
        )
        == 0
    )
    ref = km.predict([enc, dec], verbose=0)
    x = load_input(m, path=tmp_path / "in.npz")
    np.testing.assert_allclose(m.trace(x).output, ref, atol=1e-5)
    assert (tmp_path / "t.npz").stat().st_size > 0
