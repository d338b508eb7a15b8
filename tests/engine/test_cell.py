"""run_lstm against the plain reference step, and the compiled kernel against the NumPy loop.

``lstm_step`` is the six equations written plainly; ``run_lstm(accelerate=False)`` is the NumPy
reference recurrence; ``run_lstm(accelerate=True)`` runs ``lstmviz/engine/_lstm_kernel.c``
(skipped when the kernel was not built).  Masks, ``go_backwards``, initial states, batch 1
(BLAS gemv) and batch > 1 (gemm), every activation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lstmviz.engine import LSTMWeights, _accel, activations, lstm_step, run_lstm
from lstmviz.errors import InputError, LstmvizError

ATOL = 1e-6

needs_kernel = pytest.mark.skipif(not _accel.available(), reason=_accel.describe())


@pytest.fixture(params=["", "avx2", "avx512"], ids=["blas", "avx2", "avx512"])
def product(request):
    """x mode's per-step product: BLAS, or the kernel's packed AVX2 / AVX-512 tiles (skipped
    where the CPU lacks them)."""
    if not _accel.available():
        pytest.skip(_accel.describe())
    try:
        before = _accel.set_packed(request.param)
    except ValueError as e:
        pytest.skip(str(e))
    yield request.param
    _accel.set_packed(before)


def _weights(feats, units, *, seed=0, bias=True, act="tanh", rec_act="sigmoid", scale=None):
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(units) if scale is None else scale
    return LSTMWeights(
        rng.normal(0.0, 0.5, (feats, 4 * units)),
        rng.normal(0.0, s, (units, 4 * units)),
        rng.normal(0.0, 0.5, 4 * units) if bias else None,
        activation=act,
        recurrent_activation=rec_act,
    )


def _inputs(batch, steps, feats, units, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (batch, steps, feats)).astype(np.float32)
    h0 = rng.normal(0.0, 0.5, (batch, units)).astype(np.float32)
    c0 = rng.normal(0.0, 0.5, (batch, units)).astype(np.float32)
    mask = rng.random((batch, steps)) > 0.3
    return x, h0, c0, mask


def _reference(x, w, h0, c0, mask, go_backwards):
    """Step lstm_step through the sequence: {quantity: (B, T, U)} in input order."""
    batch, steps, _ = x.shape
    u = w.units
    out = {
        k: np.zeros((batch, steps, u), np.float32)
        for k in ("i", "f", "g", "o", "c", "h", "z_i", "z_f", "z_c", "z_o")
    }
    h, c = h0, c0
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    for t in order:
        s = lstm_step(x[:, t], h, c, w)
        keep = np.ones(batch, bool) if mask is None else mask[:, t]
        s["c"] = np.where(keep[:, None], s["c"], c)
        s["h"] = np.where(keep[:, None], s["h"], h)
        for k in out:
            out[k][:, t] = s[k]
        h, c = s["h"], s["c"]
    return out


_PAIRS = {
    "i": "input_gate",
    "f": "forget_gate",
    "g": "candidate",
    "o": "output_gate",
    "c": "cell",
    "h": "hidden",
    "z_i": "z_i",
    "z_f": "z_f",
    "z_c": "z_c",
    "z_o": "z_o",
}


def _assert_trace_equals(lt, ref, atol=ATOL):
    for k, q in _PAIRS.items():
        np.testing.assert_allclose(lt.get(q), ref[k], rtol=0, atol=atol, err_msg=q)


def _assert_same(a, b, atol=ATOL, rtol=ATOL, scaled=False):
    """Equal to 1e-6, relative for large values (a pre-activation of 8 has a 1e-6 ulp);
    ``scaled``: atol relative to the largest pre-activation or value (a product summed in another
    order differs by a few ulps of its largest terms; the gates and states inherit that
    difference through 1-Lipschitz sigmoid and tanh)."""
    scale = max(1.0, float(np.abs(b.pre).max(initial=0.0)))
    for buf in ("pre", "act", "c", "h"):
        want = getattr(b, buf)  # (unbounded activations: c and h can outgrow pre)
        tol = atol * max(scale, float(np.abs(want).max(initial=0.0))) if scaled else atol
        np.testing.assert_allclose(getattr(a, buf), want, rtol=rtol, atol=tol, err_msg=buf)


def _z_error(lt, w):
    """Largest |pre - exact| over the trace, relative to max |pre|: each step's
    pre-activation against x_t W + h_tm1 U + b in float64 from the trace's own h_tm1."""
    kernel, rec, bias = (None if a is None else a.astype(np.float64) for a in w._internal())
    z = lt.x.astype(np.float64) @ kernel + lt.hidden_prev.astype(np.float64) @ rec
    if bias is not None:
        z += bias
    got = lt.pre.transpose(1, 0, 2)  # (T, B, 4U) -> (B, T, 4U)
    return float(np.abs(got - z).max() / np.abs(z).max())


# ------------------------------------------------------------- NumPy loop vs lstm_step
@pytest.mark.parametrize(
    ("batch", "masked", "go_backwards"),
    list(itertools.product((1, 3), (False, True), (False, True))),
)
def test_numpy_loop_matches_reference_step(batch, masked, go_backwards):
    w = _weights(4, 6, seed=batch)
    x, h0, c0, mask = _inputs(batch, 11, 4, 6)
    m = mask if masked else None
    lt = run_lstm(x, w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards, accelerate=False)
    assert lt.meta["engine"] == "numpy"
    _assert_trace_equals(lt, _reference(x, w, h0, c0, m, go_backwards))
    np.testing.assert_array_equal(lt.h0, h0)
    np.testing.assert_array_equal(lt.c0, c0)


@pytest.mark.parametrize("act", activations.SUPPORTED)
def test_every_activation_matches_reference_step(act):
    # as the cell activation and as the recurrent activation, through whichever path
    # run_lstm picks (the kernel where it knows the activation)
    x, h0, c0, mask = _inputs(2, 7, 3, 5)
    for w in (_weights(3, 5, act=act, scale=0.3), _weights(3, 5, rec_act=act, scale=0.3)):
        with np.errstate(all="ignore"):  # exponential may overflow to inf: same in both
            lt = run_lstm(x, w, h0=h0, c0=c0, mask=mask)
            ref = _reference(x, w, h0, c0, mask, False)
        for k, q in _PAIRS.items():  # unbounded activations (exponential, log_softmax, ...)
            # grow values and rounding differences between the two codes over the steps
            np.testing.assert_allclose(lt.get(q), ref[k], rtol=1e-4, atol=1e-5, err_msg=q)


def test_no_bias_and_default_zero_states():
    w = _weights(3, 4, bias=False)
    x, _, _, _ = _inputs(2, 6, 3, 4)
    zeros = np.zeros((2, 4), np.float32)
    for accelerate in (False, None):
        lt = run_lstm(x, w, accelerate=accelerate)
        _assert_trace_equals(lt, _reference(x, w, zeros, zeros, None, False))


def test_more_items_than_steps_and_odd_input_layouts():
    w = _weights(3, 4)
    x, h0, c0, mask = _inputs(6, 2, 3, 4)
    ref = _reference(x, w, h0, c0, mask, True)
    x64_view = np.asfortranarray(x.astype(np.float64))  # float64, not C-contiguous
    for accelerate in (False, None):
        lt = run_lstm(
            x64_view, w, h0=h0, c0=c0, mask=mask, go_backwards=True, accelerate=accelerate
        )
        _assert_trace_equals(lt, ref)


def test_one_dimensional_initial_state_broadcasts():
    w = _weights(2, 3)
    x, _, _, _ = _inputs(2, 4, 2, 3)
    h0, c0 = np.array([0.1, -0.2, 0.3]), np.array([0.5, 0.0, -0.5])
    lt = run_lstm(x, w, h0=h0, c0=c0)
    ref = _reference(
        x,
        w,
        np.tile(h0, (2, 1)).astype(np.float32),
        np.tile(c0, (2, 1)).astype(np.float32),
        None,
        False,
    )
    _assert_trace_equals(lt, ref)


def test_zero_steps():
    w = _weights(2, 3)
    for accelerate in (False, None):
        lt = run_lstm(np.zeros((2, 0, 2), np.float32), w, accelerate=accelerate)
        assert lt.hidden.shape == (2, 0, 3)
        assert lt.act.shape == (0, 2, 12)


def test_bad_inputs_name_what_was_expected():
    w = _weights(2, 3)
    with pytest.raises(InputError, match="mask has shape"):
        run_lstm(np.zeros((2, 4, 2)), w, mask=np.ones((2, 5), bool))
    with pytest.raises(InputError, match="expects 2 input features; found 3"):
        run_lstm(np.zeros((2, 4, 3)), w)
    with pytest.raises(InputError, match=r"initial hidden state h0 has shape \(2, 4\)"):
        run_lstm(np.zeros((2, 4, 2)), w, h0=np.zeros(4))


# ------------------------------------------------------------- weights
def test_weights_are_immutable_copies_and_the_internal_layout_is_cached():
    k = np.ones((2, 12), np.float32)
    w = LSTMWeights(k, np.ones((3, 12), np.float32), np.ones(12, np.float32))
    assert k.flags.writeable  # the caller's array is left alone
    for a in (w.kernel, w.recurrent_kernel, w.bias):
        assert not a.flags.writeable
    assert w._internal() is w._internal()
    kernel, rec, bias = w._internal()
    u = 3
    perm = np.r_[0:u, u : 2 * u, 3 * u : 4 * u, 2 * u : 3 * u]  # i f c o -> i f o c
    rng = np.random.default_rng(3)
    w2 = LSTMWeights(rng.normal(size=(2, 12)), rng.normal(size=(3, 12)), rng.normal(size=12))
    k2, r2, b2 = w2._internal()
    np.testing.assert_array_equal(k2, w2.kernel[:, perm])
    np.testing.assert_array_equal(r2, w2.recurrent_kernel[:, perm])
    np.testing.assert_array_equal(b2, w2.bias[perm])
    assert kernel.shape == (2, 12)
    assert rec.shape == (3, 12)
    assert bias.shape == (12,)


@pytest.mark.parametrize("accelerate", [False, None])
def test_out_reuses_the_buffers_of_a_previous_trace(accelerate):
    w = _weights(5, 9, seed=3)
    x, h0, c0, mask = _inputs(3, 20, 5, 9, seed=4)
    first = run_lstm(x, w, accelerate=accelerate)
    x2 = x[:, ::-1].copy()
    fresh = run_lstm(x2, w, h0=h0, c0=c0, mask=mask, accelerate=accelerate)
    # the streamed state (views of first's buffers) is read before they are overwritten
    again = run_lstm(x2, w, h0=first.h[-1], c0=first.c[-1], accelerate=accelerate)
    h_last, c_last = first.h[-1].copy(), first.c[-1].copy()
    reused = run_lstm(x2, w, h0=h_last, c0=c_last, out=again, accelerate=accelerate)
    for a, b in zip(
        (reused.pre, reused.act, reused.c, reused.h),
        (again.pre, again.act, again.c, again.h),
        strict=True,
    ):
        assert np.shares_memory(a, b)  # written in place, nothing allocated
    streamed = run_lstm(x2, w, h0=first.h[-1], c0=first.c[-1], out=first, accelerate=accelerate)
    ref = _reference(x2, w, h_last, c_last, None, False)
    _assert_trace_equals(reused, ref)
    _assert_trace_equals(streamed, ref)  # h0/c0 were views of the buffers being written
    reused = run_lstm(x2, w, h0=h0, c0=c0, mask=mask, out=reused, accelerate=accelerate)
    _assert_same(reused, fresh, atol=0, rtol=0)  # bit-identical to a fresh trace
    with pytest.raises(InputError, match="same shape"):
        run_lstm(x2[:, :10], w, out=reused)
    with pytest.raises(InputError, match="shares memory"):
        run_lstm(np.moveaxis(reused.h[:, :, :5], 0, 1), w, out=reused)


# ------------------------------------------------------------- compiled kernel vs NumPy loop
@needs_kernel
@pytest.mark.parametrize(
    ("batch", "masked", "go_backwards"),
    list(itertools.product((1, 3), (False, True), (False, True))),
)
def test_kernel_matches_numpy_loop(batch, masked, go_backwards):
    w = _weights(5, 9, seed=10 + batch)
    x, h0, c0, mask = _inputs(batch, 25, 5, 9, seed=batch)
    m = mask if masked else None
    ref = run_lstm(x, w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards, accelerate=False)
    fast = run_lstm(x, w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards, accelerate=True)
    assert fast.meta["engine"] == "c"
    _assert_same(fast, ref)
    _assert_trace_equals(fast, _reference(x, w, h0, c0, m, go_backwards))


@needs_kernel
@pytest.mark.parametrize(("rec_act", "act"), list(itertools.product(_accel.ACT_CODES, repeat=2)))
def test_kernel_matches_numpy_loop_for_every_kernel_activation(rec_act, act):
    # linear / relu gates are unbounded and make the state grow step by step (a nonsense
    # layer, but a legal one): fewer steps and a relative tolerance there
    unbounded = {"linear", "relu", "relu6"}
    steps = 6 if {rec_act, act} & unbounded else 12
    w = _weights(3, 6, act=act, rec_act=rec_act, scale=0.3, seed=len(act) + 7 * len(rec_act))
    x, h0, c0, mask = _inputs(2, steps, 3, 6)
    ref = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=False)
    fast = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=True)
    assert np.all(np.isfinite(ref.h))
    # batch 2 runs x mode where the packed product exists (another summation order, as
    # in test_kernel_x_mode_at_larger_batches): with unbounded gates o * relu(c) multiplies
    # those differences step by step (~3e-6 relative after 6 steps)
    grows = bool({rec_act, act} & unbounded)
    _assert_same(fast, ref, atol=5e-6 if grows else ATOL, scaled=grows)


@needs_kernel
@pytest.mark.parametrize("rec_t", [False, True], ids=["batch-major", "unit-major"])
@pytest.mark.parametrize(
    ("masked", "go_backwards", "bias", "act"),
    [
        (False, False, True, "tanh"),
        (True, False, True, "tanh"),
        (True, True, False, "tanh"),
        (False, True, True, "relu"),
    ],
)
def test_kernel_x_mode_at_larger_batches(
    masked, go_backwards, bias, act, rec_t, monkeypatch, product
):
    """From X_MODE_MIN_BATCH on, the kernel computes [h_tm1, x_t] @ [U; W] + b per step
    itself (no separate input projection): same trace as the NumPy loop and as lstm_step,
    with the product batch-major or unit-major (REC_T_MIN_UNITS; forced here at 11 units),
    by BLAS or the packed tiles (35 rows: full tiles and every kind of leftover; 44 columns:
    a partial panel)."""
    monkeypatch.setattr(_accel, "REC_T_MIN_UNITS", 1 if rec_t else 10**9)
    batch = _accel.X_MODE_MIN_BATCH + 3
    w = _weights(6, 11, seed=40, bias=bias, act=act)
    x, h0, c0, mask = _inputs(batch, 30, 6, 11, seed=41)
    m = mask if masked else None
    ref = run_lstm(x, w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards, accelerate=False)
    fast = run_lstm(x, w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards, accelerate=True)
    assert fast.meta["engine"] == "c"
    # x W, h U and b are summed in another order than the NumPy loop's (x W + b) + h U:
    # float32 rounding of the largest term (scaled), a few ulps of a z of ~5, and each
    # step's z as close to the exact sum as the NumPy loop's
    tol = 5e-6 if act == "relu" else ATOL  # relu: unbounded, c grows into the thousands
    _assert_same(fast, ref, atol=tol, scaled=True)
    assert _z_error(fast, w) <= 2 * _z_error(ref, w) + 2**-23
    step_ref = _reference(x, w, h0, c0, m, go_backwards)
    if act == "relu":
        for k, q in _PAIRS.items():
            np.testing.assert_allclose(fast.get(q), step_ref[k], rtol=2e-5, atol=1e-5, err_msg=q)
    else:
        _assert_trace_equals(fast, step_ref, atol=4e-6)
    again = run_lstm(
        x[:, ::-1], w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards, out=fast
    )  # out= in this mode too
    _assert_same(
        again,
        run_lstm(x[:, ::-1], w, h0=h0, c0=c0, mask=m, go_backwards=go_backwards, accelerate=False),
        atol=tol,
        scaled=True,
    )


@needs_kernel
@pytest.mark.parametrize("batch", [1, 3])
def test_kernel_x_mode_with_transposed_weights_at_small_batches(batch, product):
    """The kernel's x mode with [U; W] given transposed also at batch 1 (sgemv) and 3,
    which run_lstm never picks itself (bench/kernel_modes.py can force it)."""
    w = _weights(5, 9, seed=50)
    x, h0, c0, mask = _inputs(batch, 14, 5, 9, seed=51)
    ref = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=False)
    _kernel, _rec, bias = w._internal()
    steps, u4 = x.shape[1], 4 * w.units
    pre = np.empty((steps, batch, u4), np.float32)
    act = np.empty_like(pre)
    cs = np.empty((steps, batch, w.units), np.float32)
    hs = np.empty_like(cs)
    _accel.run(
        pre,
        act,
        cs,
        hs,
        h0,
        c0,
        w._stacked(True),
        mask,
        False,
        w.recurrent_activation,
        w.activation,
        x=x,
        bias=bias,
        rec_t=True,
    )
    for got, want in ((pre, ref.pre), (act, ref.act), (cs, ref.c), (hs, ref.h)):
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)


@needs_kernel
@pytest.mark.parametrize(
    ("units", "batch"), [(64, 1), (64, 4), (200, 2), (96, 32), (160, 32), (256, 8)]
)
def test_kernel_matches_numpy_loop_at_realistic_sizes(units, batch, product):
    w = _weights(16, units, seed=units)
    x, h0, c0, mask = _inputs(batch, 60, 16, units, seed=units)
    ref = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=False)
    fast = run_lstm(x, w, h0=h0, c0=c0, mask=mask, accelerate=True)
    _assert_same(fast, ref, scaled=_accel.x_mode(units, batch))  # (see x mode above)
    # each step's pre-activation as close to the exact sum as the NumPy loop's (which sums
    # in yet another order): within 2x its error plus an ulp, and a few ulps in all
    err, err_ref = _z_error(fast, w), _z_error(ref, w)
    assert err <= 2 * err_ref + 2**-23, (err, err_ref)
    assert err < 2e-6, err


@pytest.mark.parametrize("accelerate", [False, None])
def test_cell_state_is_exactly_the_two_terms(accelerate):
    # c = f * c_prev + i * g to the last bit (the app and analysis.decompose show the kept
    # and written parts summing to c), in both paths: the kernel is built without FMA
    w = _weights(4, 8)
    x, h0, c0, _ = _inputs(3, 9, 4, 8)  # no mask: a masked step carries c over
    lt = run_lstm(x, w, h0=h0, c0=c0, go_backwards=True, accelerate=accelerate)
    kept = lt.forget_gate * lt.cell_prev
    written = lt.input_gate * lt.candidate
    np.testing.assert_array_equal(kept + written, lt.cell)


@needs_kernel
@pytest.mark.parametrize("name", list(_accel.ACT_CODES))
def test_kernel_activations_match_numpy(name):
    x = np.concatenate(
        [
            np.linspace(-30, 30, 200_001, dtype=np.float32),
            np.array([0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, np.inf, -np.inf], np.float32),
        ]
    )
    got = _accel.activate(name, x)
    with np.errstate(invalid="ignore"):  # softsign(inf) = inf / inf: NaN in both
        want = activations.apply(name, x)
    np.testing.assert_allclose(got, want, rtol=0, atol=3e-7)
    if name in ("tanh", "sigmoid"):
        assert np.isnan(_accel.activate(name, np.array([np.nan], np.float32)))[0]


def test_unknown_activation_uses_the_numpy_loop_and_accelerate_true_says_why():
    w = _weights(2, 3, act="gelu")
    x, _, _, _ = _inputs(1, 3, 2, 3)
    assert run_lstm(x, w).meta["engine"] == "numpy"
    with pytest.raises(LstmvizError, match="compiled kernel cannot run"):
        run_lstm(x, w, accelerate=True)


def test_describe_names_the_engine():
    text = _accel.describe()
    assert ("C kernel" in text) == _accel.available()
    if not _accel.available():
        assert text.startswith("NumPy (")


def test_accel_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("LSTMVIZ_ACCEL", "0")
    _accel._reset_for_tests()
    try:
        assert not _accel.available()
        assert "LSTMVIZ_ACCEL=0" in _accel.describe()
        w = _weights(2, 3)
        x, _, _, _ = _inputs(1, 3, 2, 3)
        assert run_lstm(x, w).meta["engine"] == "numpy"
    finally:
        monkeypatch.delenv("LSTMVIZ_ACCEL")
        _accel._reset_for_tests()
