"""The backward pass against ``torch.autograd`` on real saved PyTorch state_dicts (loaded by
lstmviz's PyTorch loader), to 1e-4 relative: inputs, every LSTM weight, the head, the embedding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lstmviz
from lstmviz.engine.backward import backward, record
from tests.engine.test_backward import assert_grad_close

torch = pytest.importorskip("torch")
# torch says so once per process when a proj_size LSTM runs on its CPU fallback
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


class Net(torch.nn.Module):
    """nn.Embedding? -> nn.LSTM (stacked, bidirectional, proj_size) -> nn.Linear."""

    def __init__(self, bidirectional=False, last=False, proj=0, embed=0, layers=2):
        super().__init__()
        self.embed = torch.nn.Embedding(embed, 4) if embed else None
        self.rnn = torch.nn.LSTM(
            4, 6, num_layers=layers, bidirectional=bidirectional, batch_first=True, proj_size=proj
        )
        d = (2 if bidirectional else 1) * (proj or 6)
        self.fc = torch.nn.Linear(d, 3)
        self.last = last

    def forward(self, x):
        if self.embed is not None:
            x = self.embed(x)
        y, _ = self.rnn(x)
        return self.fc(y[:, -1] if self.last else y)


def save(net: torch.nn.Module, path: Path, opts: dict | None = None) -> Path:
    torch.save(net.state_dict(), path)
    if opts:
        path.with_name(path.stem + ".lstmviz.json").write_text(
            json.dumps({"format_version": 1, "extra": {"torch": opts}})
        )
    return path


def torch_param_grad(name: str, grad: np.ndarray, params: dict, units: int) -> np.ndarray:
    """Our Keras-layout gradient of the torch parameter ``name`` (``rnn.weight_ih_l1_reverse``)."""
    if name.startswith("fc."):
        g = params["fc"]
        return g["kernel"].T if name.endswith("weight") else g["bias"]
    if name.startswith("embed."):
        return params["embed"]["embeddings"]
    stem = name.split(".")[-1]  # weight_ih_l1_reverse
    layer = int(stem.split("_l")[1].split("_")[0])
    lname = f"lstm_l{layer}"
    key = lname if lname in params else f"{lname}/{'backward' if 'reverse' in stem else 'forward'}"
    g = params[key]
    if stem.startswith("weight_ih"):
        return g["kernel"].T
    if stem.startswith("weight_hh"):
        return g["recurrent_kernel"].T
    if stem.startswith("weight_hr"):
        return g["projection"].T
    return g["bias"]  # bias_ih and bias_hh: both add into the one Keras bias


# a state_dict does not say what forward() does with fc (and embed): the sidecar names them
_HEAD = {"head": "fc.", "head_activation": "linear"}
CASES = {
    "stacked": ({}, {**_HEAD, "head_on": "all"}),
    "bidirectional": ({"bidirectional": True}, {**_HEAD, "head_on": "all"}),
    "proj_size": ({"proj": 2}, {**_HEAD, "head_on": "all"}),
    "bidirectional_proj": ({"bidirectional": True, "proj": 3}, {**_HEAD, "head_on": "all"}),
    "last_step": ({"last": True, "layers": 1}, {**_HEAD, "head_on": "last"}),
    "bidirectional_last": ({"bidirectional": True, "last": True}, {**_HEAD, "head_on": "last"}),
    "embedding": ({"embed": 11}, {**_HEAD, "head_on": "all", "embedding": "embed."}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_equal_torch_autograd(tmp_path, case):
    kw, opts = CASES[case]
    torch.manual_seed(0)
    net = Net(**kw).eval()
    for p in net.parameters():  # gates away from 0.5
        torch.nn.init.normal_(p, 0.0, 0.6)
    # a state_dict does not record forward(): the sidecar says what follows the LSTM
    opts = {"lstm_prefix": "rnn.", "head": ["fc."], "head_on": "all", **opts}
    if kw.get("embed"):
        opts["embedding"] = "embed."
    model = lstmviz.load_model(save(net, tmp_path / f"{case}.pt", opts))
    rng = np.random.default_rng(1)
    if kw.get("embed"):
        x = rng.integers(0, kw["embed"], (3, 7))
        tx = torch.from_numpy(x)
    else:
        x = rng.normal(size=(3, 7, 4)).astype(np.float32)
        tx = torch.from_numpy(x).requires_grad_(True)
    y = net(tx)
    seed = rng.normal(size=tuple(y.shape)).astype(np.float32)
    (y * torch.from_numpy(seed)).sum().backward()

    tape = record(model, x)
    np.testing.assert_allclose(tape.output, y.detach().numpy(), atol=1e-5)
    g = backward(tape, seed)
    if not kw.get("embed"):
        assert_grad_close(g.inputs[0], tx.grad.numpy(), what="input")
    for name, p in net.named_parameters():
        ours = torch_param_grad(name, p.grad.numpy(), g.params, 6)
        assert_grad_close(ours, p.grad.numpy(), what=name)


# ------------------------------------------------------------------------------ ONNX
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.filterwarnings("ignore::UserWarning:torch.*")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(("batch_first", "last"), [(True, True), (False, False)])
def test_onnx_graph_gradients_equal_torch_autograd(tmp_path, batch_first, last):
    """An ONNX export of a torch model: the backward pass through the interpreted ONNX graph
    (Transpose, Squeeze, Concat, Gather/Slice, MatMul/Gemm, Add ... around the LSTM nodes)."""
    pytest.importorskip("onnx")

    class OnnxNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(
                4, 5, num_layers=2, bidirectional=True, batch_first=batch_first
            )
            self.fc = torch.nn.Linear(10, 3)

        def forward(self, x):
            y, _ = self.rnn(x)
            if last:
                y = y[:, -1] if batch_first else y[-1]
            return torch.tanh(self.fc(y))

    torch.manual_seed(1)
    net = OnnxNet().eval()
    x = np.random.default_rng(2).normal(size=(3, 6, 4)).astype(np.float32)
    xt = x if batch_first else x.transpose(1, 0, 2).copy()
    axes = {0: "batch", 1: "time"} if batch_first else {0: "time", 1: "batch"}
    path = tmp_path / "net.onnx"
    torch.onnx.export(
        net,
        (torch.from_numpy(xt),),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": axes, "y": {0: "batch"} if last else axes},
    )
    model = lstmviz.load_model(path)
    tx = torch.from_numpy(xt).requires_grad_(True)
    y = net(tx)
    seed_t = np.random.default_rng(3).normal(size=tuple(y.shape)).astype(np.float32)
    (y * torch.from_numpy(seed_t)).sum().backward()
    tape = record(model, x)
    out = np.asarray(tape.output)
    # lstmviz hands a time-major graph batch-first: outputs and the seed follow
    seed = seed_t if (batch_first or last) else seed_t.transpose(1, 0, 2)
    np.testing.assert_allclose(
        out,
        y.detach().numpy() if seed is seed_t else y.detach().numpy().transpose(1, 0, 2),
        atol=1e-5,
    )
    g = backward(tape, seed)
    ref = tx.grad.numpy() if batch_first else tx.grad.numpy().transpose(1, 0, 2)
    assert_grad_close(g.inputs[0], ref, what="input")
    assert set(g.layers) == {f"lstm_l{k}/{d}" for k in (0, 1) for d in ("forward", "backward")}
