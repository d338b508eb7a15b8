"""Reference LSTM step math written in the framework itself (torch ops), for the bridge
tests: every gate of every step, from a module's own parameters."""

from __future__ import annotations

import numpy as np


def torch_lstm_steps(
    x, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, h0=None, c0=None, reverse=False, lengths=None
):
    """One direction of one layer, step by step in torch: x (B, T, F) tensor.

    Returns a dict of NumPy arrays (B, T, ...) by input position: z_i, z_f, z_c, z_o, i, f,
    g, o, c, h. Steps at or past ``lengths[b]`` carry the state over (packed sequences).
    """
    import torch

    b, t, _ = x.shape
    u = w_hh.shape[0] // 4
    p = w_hr.shape[0] if w_hr is not None else u
    h = torch.zeros(b, p) if h0 is None else h0.clone()
    c = torch.zeros(b, u) if c0 is None else c0.clone()
    keys = ("z_i", "z_f", "z_c", "z_o", "i", "f", "g", "o", "c", "h")
    out = {k: [None] * t for k in keys}
    order = range(t - 1, -1, -1) if reverse else range(t)
    for s in order:
        z = x[:, s] @ w_ih.T + h @ w_hh.T
        if b_ih is not None:
            z = z + b_ih + b_hh
        zi, zf, zg, zo = z.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(zi), torch.sigmoid(zf), torch.tanh(zg), torch.sigmoid(zo)
        c_new = f * c + i * g
        h_new = o * torch.tanh(c_new)
        if w_hr is not None:
            h_new = h_new @ w_hr.T
        if lengths is not None:
            live = (torch.as_tensor(lengths) > s)[:, None]
            c_new = torch.where(live, c_new, c)
            h_new = torch.where(live, h_new, h)
        c, h = c_new, h_new
        for k, v in zip(keys, (zi, zf, zg, zo, i, f, g, o, c, h), strict=True):
            out[k][s] = v.detach().numpy()
    return {k: np.stack(v, axis=1) for k, v in out.items()}


QUANTITIES = {
    "z_i": "z_i",
    "z_f": "z_f",
    "z_c": "z_c",
    "z_o": "z_o",
    "i": "input_gate",
    "f": "forget_gate",
    "g": "candidate",
    "o": "output_gate",
    "c": "cell",
    "h": "hidden",
}


def assert_layer_equal(lt, ref, atol=1e-5, mask=None):
    """Every quantity of a LayerTrace equals the reference to ``atol``; with ``mask``
    (B, T), only real steps are compared for the pre-activations and gates."""
    for key, attr in QUANTITIES.items():
        ours = np.asarray(getattr(lt, attr))
        want = ref[key]
        if mask is not None and key not in ("c", "h"):
            ours, want = ours[mask], want[mask]
        np.testing.assert_allclose(ours, want, atol=atol, rtol=0, err_msg=f"{lt.name}: {attr}")


def keras_lstm_steps(x, cell, h0=None, c0=None, reverse=False, mask=None):
    """One Keras LSTMCell's math step by step in keras.ops on its own weights: x (B, T, F).

    Returns NumPy arrays (B, T, ...) by input position; masked steps carry the state."""
    import keras
    from keras import ops

    cfg = cell.get_config()
    sig = keras.activations.get(cfg["recurrent_activation"])
    act = keras.activations.get(cfg["activation"])
    x = np.asarray(x, np.float32)
    b, t, _ = x.shape
    u = cell.units
    h = np.zeros((b, u), np.float32) if h0 is None else np.asarray(h0, np.float32)
    c = np.zeros((b, u), np.float32) if c0 is None else np.asarray(c0, np.float32)
    keys = ("z_i", "z_f", "z_c", "z_o", "i", "f", "g", "o", "c", "h")
    out = {k: [None] * t for k in keys}
    order = range(t - 1, -1, -1) if reverse else range(t)
    for s in order:
        z = ops.matmul(x[:, s], cell.kernel) + ops.matmul(h, cell.recurrent_kernel)
        if cell.use_bias:
            z = z + cell.bias
        zi, zf, zc, zo = (z[:, k * u : (k + 1) * u] for k in range(4))
        i, f, g, o = sig(zi), sig(zf), act(zc), sig(zo)
        c_new = f * c + i * g
        h_new = o * act(c_new)
        vals = [ops.convert_to_numpy(v) for v in (zi, zf, zc, zo, i, f, g, o, c_new, h_new)]
        if mask is not None:
            keep = ~np.asarray(mask)[:, s, None]
            vals[8] = np.where(keep, c, vals[8])
            vals[9] = np.where(keep, h, vals[9])
        c, h = vals[8], vals[9]
        for k, v in zip(keys, vals, strict=True):
            out[k][s] = v
    return {k: np.stack(v, axis=1) for k, v in out.items()}
