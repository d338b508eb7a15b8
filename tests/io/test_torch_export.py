"""torch.export programs (.pt2): the whole model runs in torch, its LSTMs recorded exactly."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

import lstmviz
from lstmviz.errors import LstmvizError, ModelFileError, UnsafeModelError

torch = pytest.importorskip("torch")

from tests.zoo import torch_zoo as tz  # noqa: E402

ATOL = 1e-5


def _save(module, args, path):
    torch.export.save(torch.export.export(module, args), str(path))
    return path


@pytest.mark.filterwarnings("ignore::UserWarning")  # export notes the LSTM's flat weights
def test_word_language_model_pt2(tmp_path):
    net, ids = tz.word_language_model()
    path = _save(net, (torch.from_numpy(ids), net.init_hidden(1)), tmp_path / "wlm.pt2")
    model = lstmviz.load_model(path)
    assert model.format == "pt2"
    assert model.lstm_trace_names == ["rnn_l0", "rnn_l1"]
    assert model.takes_tokens and model.embedding.input_dim == 50
    assert model.optional_inputs == ["hidden_0", "hidden_1"]
    assert model.meta["pt2"]["time_major"] is True
    trace = model.trace(ids.T)
    x = torch.from_numpy(ids)
    with torch.no_grad():
        ref, (h, _) = net(x, net.init_hidden(1))
        emb = net.encoder(x)
        y0, _ = net.rnn.forward(emb)
        l0 = torch.nn.LSTM(20, 20)
        l0.load_state_dict(
            {k[:-1] + "0": v for k, v in net.rnn.state_dict().items() if k.endswith("l0")}
        )
        first, _ = l0(emb)
    np.testing.assert_allclose(trace.output[0], ref.numpy(), atol=ATOL)
    np.testing.assert_allclose(trace.output[1], h.numpy(), atol=ATOL)
    np.testing.assert_allclose(trace.layer("rnn_l0").hidden[0], first[:, 0], atol=ATOL)
    np.testing.assert_allclose(trace.layer("rnn_l1").hidden[0], y0[:, 0], atol=ATOL)
    assert trace.step_output.shape == (1, 35, 50)
    from lstmviz.analysis.outputs import output_spec

    assert output_spec(model).kind == "log_probabilities"


def test_time_sequence_prediction_pt2(tmp_path):
    """Two nn.LSTMCells called in a loop: each call a step, the cells stacked layers."""
    net, x = tz.time_sequence()
    path = _save(net, (torch.from_numpy(x),), tmp_path / "seq.pt2")
    model = lstmviz.load_model(path)
    assert model.lstm_trace_names == ["lstm1", "lstm2"]
    trace = model.trace(x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x))
        h1 = torch.zeros(2, 51)
        c1, h2, c2 = torch.zeros_like(h1), torch.zeros_like(h1), torch.zeros_like(h1)
        hs1, cs2 = [], []
        for t in range(x.shape[1]):
            h1, c1 = net.lstm1(torch.from_numpy(x[:, t : t + 1]), (h1, c1))
            h2, c2 = net.lstm2(h1, (h2, c2))
            hs1.append(h1)
            cs2.append(c2)
    np.testing.assert_allclose(trace.output, ref.numpy(), atol=ATOL)
    np.testing.assert_allclose(trace.layer("lstm1").hidden, torch.stack(hs1, 1), atol=ATOL)
    np.testing.assert_allclose(trace.layer("lstm2").cell, torch.stack(cs2, 1), atol=ATOL)
    assert trace.layer("lstm2").forget_gate.shape == (2, 39, 51)


@pytest.mark.filterwarnings("ignore::UserWarning")  # the example's Dropout2d; export's notes
def test_mnist_rnn_pt2(tmp_path):
    net, x = tz.mnist_rnn()
    path = _save(net, (torch.from_numpy(x),), tmp_path / "mnist.pt2")
    model = lstmviz.load_model(path)
    trace = model.trace(x)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
        seq, _ = net.rnn(torch.from_numpy(x.reshape(-1, 28, 28)))
    np.testing.assert_allclose(trace.output, ref, atol=ATOL)
    np.testing.assert_allclose(trace.layer("rnn_l0").hidden, seq.numpy(), atol=ATOL)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("batch_first", [True, False])
def test_bidirectional_projected_lstm_pt2(tmp_path, batch_first):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(
                4, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=batch_first
            )
            self.fc = torch.nn.Linear(6, 2)

        def forward(self, x):
            y, _ = self.rnn(x)
            return torch.softmax(self.fc(y), dim=-1)

    torch.manual_seed(0)
    net = Net().eval()
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype(np.float32)
    xt = x if batch_first else x.transpose(1, 0, 2).copy()
    path = _save(net, (torch.from_numpy(xt),), tmp_path / "bi.pt2")
    model = lstmviz.load_model(path)
    assert model.lstm_trace_names == [
        "rnn_l0/forward",
        "rnn_l0/backward",
        "rnn_l1/forward",
        "rnn_l1/backward",
    ]
    trace = model.trace(x)  # batch-first, whatever the module's layout
    with torch.no_grad():
        ref = net(torch.from_numpy(xt)).numpy()
        y, _ = net.rnn(torch.from_numpy(xt))
    y = y.numpy() if batch_first else y.numpy().transpose(1, 0, 2)
    want = ref if batch_first else ref.transpose(1, 0, 2)
    np.testing.assert_allclose(trace.output, want, atol=ATOL)
    np.testing.assert_allclose(trace.layer("rnn_l1/forward").hidden, y[..., :3], atol=ATOL)
    np.testing.assert_allclose(trace.layer("rnn_l1/backward").hidden, y[..., 3:], atol=ATOL)
    assert trace.layer("rnn_l1/forward").units == 6


def test_cells_called_out_of_sequence_are_refused(tmp_path):
    class Reset(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.LSTMCell(2, 3)

        def forward(self, x):
            outs = []
            for x_t in x.unbind(1):  # each call starts from zeros: not one sequence
                h, _ = self.cell(x_t, (torch.zeros(x.shape[0], 3), torch.ones(x.shape[0], 3)))
                outs.append(h)
            return torch.stack(outs, 1)

    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(2, 4, 2)).astype(np.float32)
    path = _save(Reset().eval(), (torch.from_numpy(x),), tmp_path / "reset.pt2")
    with pytest.raises(LstmvizError, match=r"are not one sequence"):
        lstmviz.load_model(path)


def test_decomposed_programs_and_non_programs(tmp_path):
    net, x = tz.time_sequence()
    ep = torch.export.export(net, (torch.from_numpy(x),)).run_decompositions()
    torch.export.save(ep, str(tmp_path / "dec.pt2"))
    with pytest.raises(ModelFileError, match=r"no LSTM in the program.*run_decompositions"):
        lstmviz.load_model(tmp_path / "dec.pt2")
    (tmp_path / "junk.pt2").write_bytes(b"not a zip at all" * 10)
    with pytest.raises(ModelFileError, match=r"not a torch\.export archive"):
        lstmviz.load_model(tmp_path / "junk.pt2")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pickled_payloads_never_run(tmp_path):
    """A .pt2 whose weight is a pickle calling os.system: refused, the payload never runs."""
    net, x = tz.time_sequence()
    good = _save(net, (torch.from_numpy(x),), tmp_path / "good.pt2")
    marker = tmp_path / "PWNED"
    with zipfile.ZipFile(good) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    cfg_name = next(n for n in members if n.endswith("model_weights_config.json"))
    cfg = json.loads(members[cfg_name])
    first = next(iter(cfg["config"].values()))
    first["use_pickle"] = True
    members[cfg_name] = json.dumps(cfg).encode()
    weight = next(n for n in members if n.endswith("/weights/" + first["path_name"]))
    members[weight] = pickle.dumps(_Payload(marker))
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(bad, "w") as zout:
        for n, data in members.items():
            zout.writestr(n, data)
    with pytest.raises(LstmvizError):
        lstmviz.load_model(bad)
    assert not marker.exists()
    # an archive with an opaque object member is refused before anything is read
    members2 = dict(members)
    root = cfg_name.split("/")[0]
    members2[f"{root}/data/constants/opaque_obj_0"] = pickle.dumps(_Payload(marker))
    with zipfile.ZipFile(tmp_path / "opaque.pt2", "w") as zout:
        for n, data in members2.items():
            zout.writestr(n, data)
    with pytest.raises(UnsafeModelError, match="pickled Python objects"):
        lstmviz.load_model(tmp_path / "opaque.pt2")
    assert not marker.exists()
