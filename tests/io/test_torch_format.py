"""PyTorch state_dicts (.pt via weights_only, .safetensors): parity with torch.nn.LSTM."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.engine import run_lstm
from lstmviz.engine.cell import LSTMWeights, lstm_step
from lstmviz.errors import LstmvizError, ModelFileError, UnsafeModelError
from lstmviz.io import MODEL_FORMATS, torch_format

torch = pytest.importorskip("torch")

ATOL = 1e-5


def _save(sd, path: Path) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save(sd, path)
    return path


def _sidecar(path: Path, opts: dict) -> None:
    path.with_name(path.stem + ".lstmviz.json").write_text(
        json.dumps({"format_version": 1, "extra": {"torch": opts}})
    )


def _x(batch=3, steps=7, feats=4, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, feats)).astype(np.float32)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------------------- parity
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_bidirectional_two_layers_parity(tmp_path, suffix, batch_first):
    lstm = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=batch_first).eval()
    path = _save(lstm.state_dict(), tmp_path / f"rnn{suffix}")
    _sidecar(path, {"batch_first": batch_first})
    model = lstmviz.load_model(path)
    assert model.format == "pytorch"
    assert model.lstm_trace_names == [
        "lstm_l0/forward",
        "lstm_l0/backward",
        "lstm_l1/forward",
        "lstm_l1/backward",
    ]
    assert model.meta["torch"]["batch_first"] is batch_first
    x_bf = _x()
    x_torch = x_bf if batch_first else x_bf.transpose(1, 0, 2).copy()
    with torch.no_grad():
        y, (h_n, c_n) = lstm(torch.from_numpy(x_torch))
    y = y.numpy()
    trace = model.trace(torch_format.to_batch_first(model, x_torch))
    # lstmviz is batch-first whatever batch_first says
    np.testing.assert_allclose(trace.output, y if batch_first else y.transpose(1, 0, 2), atol=ATOL)
    np.testing.assert_allclose(torch_format.from_batch_first(model, trace.output), y, atol=ATOL)
    y_bf = y if batch_first else y.transpose(1, 0, 2)
    np.testing.assert_allclose(trace.layer("lstm_l1/forward").hidden, y_bf[..., :5], atol=ATOL)
    np.testing.assert_allclose(trace.layer("lstm_l1/backward").hidden, y_bf[..., 5:], atol=ATOL)
    # h_n / c_n: layer-major, forward then backward; backward's last step is position 0
    for k in range(2):
        f, b = trace.layer(f"lstm_l{k}/forward"), trace.layer(f"lstm_l{k}/backward")
        np.testing.assert_allclose(f.hidden[:, -1], h_n[2 * k].numpy(), atol=ATOL)
        np.testing.assert_allclose(b.hidden[:, 0], h_n[2 * k + 1].numpy(), atol=ATOL)
        np.testing.assert_allclose(f.cell[:, -1], c_n[2 * k].numpy(), atol=ATOL)
        np.testing.assert_allclose(b.cell[:, 0], c_n[2 * k + 1].numpy(), atol=ATOL)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_gates_match_torch_math(tmp_path, suffix):
    """The recorded gates are torch's: i, f, g, o from weight_ih/weight_hh written out."""
    lstm = torch.nn.LSTM(4, 3, batch_first=True).eval()
    model = lstmviz.load_model(_save(lstm.state_dict(), tmp_path / f"one{suffix}"))
    x = _x(2, 5)
    lt = model.trace(x).layer("lstm_l0")
    sd = {k: v.numpy().astype(np.float64) for k, v in lstm.state_dict().items()}
    h = np.zeros((2, 3))
    c = np.zeros((2, 3))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for t in range(5):
        z = (
            x[:, t] @ sd["weight_ih_l0"].T
            + sd["bias_ih_l0"]
            + h @ sd["weight_hh_l0"].T
            + sd["bias_hh_l0"]
        )
        i, f, g, o = np.split(z, 4, axis=1)
        i, f, g, o = sig(i), sig(f), np.tanh(g), sig(o)
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, ref in (
            ("input_gate", i),
            ("forget_gate", f),
            ("candidate", g),
            ("output_gate", o),
            ("cell", c),
            ("hidden", h),
        ):
            np.testing.assert_allclose(lt.get(name)[:, t], ref, atol=ATOL, err_msg=name)


class _Net(torch.nn.Module):
    def __init__(self, bidirectional=False, last=False, proj=0, embed=0):
        super().__init__()
        self.embed = torch.nn.Embedding(embed, 4) if embed else None
        self.rnn = torch.nn.LSTM(
            4, 6, num_layers=2, bidirectional=bidirectional, batch_first=True, proj_size=proj
        )
        d = (2 if bidirectional else 1) * (proj or 6)
        self.fc = torch.nn.Linear(d, 3)
        self.last = last

    def forward(self, x):
        if self.embed is not None:
            x = self.embed(x)
        y, _ = self.rnn(x)
        return self.fc(y[:, -1] if self.last else y)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_linear_head_every_step(tmp_path, suffix, bidirectional):
    net = _Net(bidirectional).eval()
    path = _save(net.state_dict(), tmp_path / f"net{suffix}")
    with pytest.raises(ModelFileError, match=r"Only the LSTM can be known"):
        lstmviz.load_model(path)  # a head is never attached unless the user names it
    _sidecar(path, {"head": "fc.", "head_on": "all", "head_activation": "linear"})
    model = lstmviz.load_model(path)
    assert list(model.layers)[-1] == "fc"
    assert model.meta["torch"]["head"] == "fc."
    x = _x()
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    trace = model.trace(x)
    np.testing.assert_allclose(trace.output, ref, atol=ATOL)
    np.testing.assert_allclose(trace.step_output, ref, atol=ATOL)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_linear_head_on_last_step(tmp_path, bidirectional):
    net = _Net(bidirectional, last=True).eval()
    path = _save(net.state_dict(), tmp_path / "last.pt")
    _sidecar(path, {"head": "fc.", "head_on": "last", "head_activation": "linear"})
    model = lstmviz.load_model(path)
    x = _x()
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    trace = model.trace(x)
    np.testing.assert_allclose(trace.output, ref, atol=ATOL)
    if not bidirectional:  # the head at every step: what it would say if the input ended there
        with torch.no_grad():
            y, _ = net.rnn(torch.from_numpy(x))
            every = net.fc(y).numpy()
        np.testing.assert_allclose(trace.step_output, every, atol=ATOL)


@pytest.mark.filterwarnings("ignore:LSTM with projections:UserWarning")
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_proj_size(tmp_path, suffix):
    net = _Net(bidirectional=True, proj=2).eval()
    path = _save(net.state_dict(), tmp_path / f"proj{suffix}")
    _sidecar(path, {"head": ["fc."], "head_on": "all"})
    model = lstmviz.load_model(path)
    assert model.meta["torch"]["proj_size"] == 2
    x = _x()
    with torch.no_grad():
        y, (_h_n, c_n) = net.rnn(torch.from_numpy(x))
        ref = net.fc(y).numpy()
    trace = model.trace(x)
    np.testing.assert_allclose(trace.output, ref, atol=ATOL)
    lt = trace.layer("lstm_l1/forward")
    assert lt.units == 6
    assert lt.hidden_units == 2
    assert lt.cell.shape == (3, 7, 6)
    assert lt.forget_gate.shape == (3, 7, 6)
    assert lt.hidden.shape == (3, 7, 2)
    assert lt.hidden_prev.shape == (3, 7, 2)
    np.testing.assert_allclose(lt.hidden, y.numpy()[..., :2], atol=ATOL)
    np.testing.assert_allclose(lt.cell[:, -1], c_n[2].numpy(), atol=ATOL)
    assert lt.at("hidden", 3).shape == (2,)
    assert lt.at("cell", 3).shape == (6,)
    # contributions split z over W·x, U·h, b with the projected h
    parts = lt.contributions(3, 1)
    np.testing.assert_allclose(parts["forget_gate"]["z"], lt.z_f[1, 3], atol=ATOL)


def test_projection_engine_matches_reference_step():
    rng = np.random.default_rng(5)
    u, p, f = 5, 3, 4
    w = LSTMWeights(
        rng.normal(size=(f, 4 * u)),
        rng.normal(size=(p, 4 * u)),
        rng.normal(size=4 * u),
        projection=rng.normal(size=(u, p)),
    )
    assert w.units == 5
    assert w.output_units == 3
    assert w.n_params == 4 * u * (f + p + 1) + u * p
    x = _x(2, 6, f)
    mask = np.ones((2, 6), bool)
    mask[1, 4:] = False
    for back in (False, True):
        lt = run_lstm(x, w, go_backwards=back, mask=mask, h0=np.ones(p), c0=np.ones(u))
        h, c = np.ones((2, p), np.float32), np.ones((2, u), np.float32)
        for t in range(5, -1, -1) if back else range(6):
            ref = lstm_step(x[:, t], h, c, w)
            m = mask[:, t][:, None]
            c = np.where(m, ref["c"], c)
            h = np.where(m, ref["h"], h)
            np.testing.assert_allclose(lt.forget_gate[:, t], ref["f"], atol=ATOL)
            np.testing.assert_allclose(lt.cell[:, t], c, atol=ATOL)
            np.testing.assert_allclose(lt.hidden[:, t], h, atol=ATOL)
    with pytest.raises(LstmvizError, match=r"recurrent_kernel"):
        LSTMWeights(
            rng.normal(size=(f, 4 * u)),
            rng.normal(size=(u, 4 * u)),
            projection=rng.normal(size=(u, p)),
        )


def test_embedding_lstm_linear(tmp_path):
    net = _Net(embed=11).eval()
    path = _save(net.state_dict(), tmp_path / "charlm.pt")
    _sidecar(path, {"embedding": "embed.", "head": ["fc."], "head_on": "all"})
    model = lstmviz.load_model(path)
    assert model.takes_tokens
    assert model.embedding.name == "embed"
    ids = np.random.default_rng(1).integers(0, 11, size=(2, 9))
    with torch.no_grad():
        ref = net(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(model.trace(ids).output, ref, atol=ATOL)


def test_checkpoint_dict_and_lstm_cell(tmp_path):
    lstm = torch.nn.LSTM(4, 5, batch_first=True).eval()
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "model_state_dict": lstm.state_dict(), "optimizer": {"lr": 0.1}}, path)
    x = _x()
    with torch.no_grad():
        ref = lstm(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(lstmviz.load_model(path).trace(x).output, ref, atol=ATOL)
    # nn.LSTMCell weights (a hand-written loop over time) are one layer
    cell = torch.nn.LSTMCell(4, 5)
    cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    path = torch_format.Path(tmp_path / "cell.pt")
    torch.save({f"cell.{k}": v for k, v in cell.state_dict().items()}, path)
    model = lstmviz.load_model(path)
    assert model.meta["torch"]["lstm_cell"]
    np.testing.assert_allclose(model.trace(x).output, ref, atol=ATOL)


def test_safetensors_raw_reader_matches_package(tmp_path):
    from safetensors.torch import save_file

    net = _Net(bidirectional=True)
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    sd["half"] = torch.randn(3, 2).to(torch.bfloat16)
    sd["steps"] = torch.arange(4)
    path = tmp_path / "n.safetensors"
    save_file(sd, str(path))
    raw = torch_format.read_safetensors_raw(path)
    assert set(raw) == set(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(
            raw[k], v.float().numpy() if v.is_floating_point() else v.numpy()
        )
    assert raw["half"].dtype == np.float32
    # the package path falls back to the raw reader for bf16
    assert set(torch_format.read_safetensors(path)) == set(sd)


# ---------------------------------------------------------------------------- errors
def test_bad_files_name_what_is_missing(tmp_path):
    lstm = torch.nn.LSTM(4, 5, num_layers=2)
    sd = lstm.state_dict()

    empty = _save({}, tmp_path / "empty.pt")
    with pytest.raises(ModelFileError, match=r"empty"):
        lstmviz.load_model(empty)

    no_hh1 = _save({k: v for k, v in sd.items() if k != "weight_hh_l1"}, tmp_path / "no_hh.pt")
    with pytest.raises(ModelFileError, match=r"missing 'weight_hh_l1'"):
        lstmviz.load_model(no_hh1)

    no_b = _save({k: v for k, v in sd.items() if k != "bias_hh_l0"}, tmp_path / "no_b.pt")
    with pytest.raises(ModelFileError, match=r"missing 'bias_hh_l0'"):
        lstmviz.load_model(no_b)

    gap = _save({k.replace("_l1", "_l2"): v for k, v in sd.items()}, tmp_path / "gap.pt")
    with pytest.raises(ModelFileError, match=r"weight_ih_l1"):
        lstmviz.load_model(gap)

    conv = _save(
        {"conv.weight": torch.zeros(3, 3, 3), "conv.bias": torch.zeros(3)},
        tmp_path / "conv.safetensors",
    )
    with pytest.raises(ModelFileError, match=r"no nn.LSTM weights.*weight_ih_l0.*conv.weight"):
        lstmviz.load_model(conv)

    whole = tmp_path / "whole.pt"
    torch.save(lstm, whole)
    with pytest.raises(UnsafeModelError, match=r"state_dict\(\)"):
        lstmviz.load_model(whole)

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a torch file")
    with pytest.raises(ModelFileError, match=r"not a readable torch.save file"):
        lstmviz.load_model(junk)

    st = tmp_path / "junk.safetensors"
    st.write_bytes((10**9).to_bytes(8, "little") + b"{}")
    with pytest.raises(ModelFileError, match=r"header length"):
        lstmviz.load_model(st)

    with pytest.raises(ModelFileError, match=r"no such file"):
        lstmviz.load_model(tmp_path / "missing.pt")

    bad_shape = dict(sd)
    bad_shape["weight_ih_l1"] = torch.zeros(20, 7)
    with pytest.raises(
        ModelFileError, match=r"weight_ih_l1 has shape \(20, 7\); expected \(20, 5\)"
    ):
        lstmviz.load_model(_save(bad_shape, tmp_path / "shape.pt"))


def test_ambiguous_files_say_what_json_to_write(tmp_path):
    a, b = torch.nn.LSTM(4, 5), torch.nn.LSTM(5, 3)
    sd = {
        **{f"enc.{k}": v for k, v in a.state_dict().items()},
        **{f"dec.{k}": v for k, v in b.state_dict().items()},
    }
    path = _save(sd, tmp_path / "two.pt")
    side = tmp_path / "two.lstmviz.json"
    with pytest.raises(ModelFileError) as e:
        lstmviz.load_model(path)
    msg = str(e.value)
    assert str(side) in msg
    assert '"lstm_prefix": "dec."' in msg
    assert "'enc.'" in msg
    _sidecar(path, {"lstm_prefix": "enc."})
    with pytest.raises(ModelFileError, match=r"dec. \[nn.LSTM: dec.weight_ih_l0"):
        lstmviz.load_model(path)  # the other LSTM is never ignored silently
    _sidecar(path, {"lstm_prefix": "enc.", "head": None})
    model = lstmviz.load_model(path)
    assert model.lstm("lstm_l0").weights.units == 5

    # weights lstmviz cannot place after the LSTM
    net = torch.nn.ModuleDict(
        {"rnn": torch.nn.LSTM(4, 5), "norm": torch.nn.LayerNorm(5), "out": torch.nn.Linear(5, 2)}
    )
    path = _save(net.state_dict(), tmp_path / "extra.pt")
    with pytest.raises(ModelFileError) as e:
        lstmviz.load_model(path)
    msg = str(e.value)
    assert "norm.weight (5,)" in msg
    assert '"head": ["norm.", "<activation after it, or remove>", "out."' in msg
    assert "extra.lstmviz.json" in msg
    _sidecar(path, {"head": None})
    assert list(lstmviz.load_model(path).layers) == ["input", "lstm_l0"]
    _sidecar(path, {"head": "norm.", "head_on": "all", "head_activation": "linear"})
    with pytest.raises(ModelFileError, match=r"leaves weights unplaced: out.weight"):
        lstmviz.load_model(path)
    _sidecar(path, {"head": "out.", "head_on": "all"})
    with pytest.raises(ModelFileError, match=r"also give 'head_activation'"):
        lstmviz.load_model(path)
    _sidecar(path, {"head": ["out.", "norm."], "head_on": "all"})
    with pytest.raises(ModelFileError, match=r"normalises 5 features; what comes before it has 2"):
        lstmviz.load_model(path)
    _sidecar(path, {"head": ["norm.", "tanh", "out.", "sigmoid"], "head_on": "all"})
    x = np.random.default_rng(0).normal(size=(2, 4, 4)).astype(np.float32)
    with torch.no_grad():
        y, _ = net["rnn"](torch.from_numpy(x.transpose(1, 0, 2).copy()))
        ref = torch.sigmoid(net["out"](torch.tanh(net["norm"](y)))).numpy().transpose(1, 0, 2)
    np.testing.assert_allclose(lstmviz.load_model(path).trace(x).output, ref, atol=ATOL)
    _sidecar(path, {"head": ["norm.", "<activation after it, or remove>"], "head_on": "all"})
    with pytest.raises(ModelFileError, match=r"neither a module of the state_dict nor an act"):
        lstmviz.load_model(path)

    _sidecar(path, {"batch_first": "yes"})
    with pytest.raises(ModelFileError, match=r"batch_first.*bool"):
        lstmviz.load_model(path)
    _sidecar(path, {"lstm_prefx": "rnn."})
    with pytest.raises(ModelFileError, match=r"unknown torch option.*lstm_prefx"):
        lstmviz.load_model(path)
    _sidecar(path, {"input_size": 7, "head": None})
    with pytest.raises(ModelFileError, match=r"input_size 7"):
        lstmviz.load_model(path)
    assert torch_format.load_torch(path, input_size=4).meta["torch"]["input_size"] == 4


def test_formats_registered():
    for ext in (".pt", ".pth", ".safetensors", ".onnx", ".index"):
        assert ext in MODEL_FORMATS


def test_loading_never_imports_tensorflow(tmp_path):
    net = _Net(bidirectional=True)
    pt = _save(net.state_dict(), tmp_path / "a.pt")
    st = _save(net.state_dict(), tmp_path / "a.safetensors")
    _sidecar(pt, {"head": None})
    code = (
        "import sys, lstmviz\n"
        f"lstmviz.load_model({str(pt)!r}); lstmviz.load_model({str(st)!r})\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
        # safetensors needs no torch
        "sys.modules.pop('torch', None)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # torch not installed\n"
        "import lstmviz\n"
        f"m = lstmviz.load_model({str(st)!r})\n"
        "assert m.format == 'pytorch'\n"
        "try:\n"
        f"    lstmviz.load_model({str(pt)!r})\n"
        "except lstmviz.LstmvizError as e:\n"
        "    assert 'pip install torch' in str(e), e\n"
        "else:\n"
        "    raise SystemExit('no error without torch')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_corrupted_safetensors_raise_lstmviz_errors(tmp_path):
    """Truncated and bit-flipped files fail with LstmvizError, never another exception."""
    data = _save(_Net(bidirectional=True).state_dict(), tmp_path / "ok.safetensors").read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "fuzz.safetensors"
    for i in range(120):
        b = bytearray(data)
        if i % 2:
            b = b[: rng.integers(1, len(b))]
        else:
            for _ in range(rng.integers(1, 12)):
                b[rng.integers(0, min(len(b), 600))] = rng.integers(0, 256)
        path.write_bytes(bytes(b))
        with contextlib.suppress(LstmvizError):
            lstmviz.load_model(path).trace(_x())
