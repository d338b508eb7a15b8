"""The compiled kernel's self-test: deterministic scrambled inputs, and a wrong kernel fails it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from lstmviz.engine import _accel


def test_scrambled_values_are_deterministic_and_varied():
    a = _accel._scrambled((7, 28), 2.0, 12346)
    assert a.dtype == np.float32 and a.shape == (7, 28)
    np.testing.assert_array_equal(a, _accel._scrambled((7, 28), 2.0, 12346))
    assert np.abs(a).max() <= 2.0 and (a > 0.5).any() and (a < -0.5).any()
    flat = a.ravel().astype(np.float64)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.3  # no smooth run of values
    assert not np.array_equal(a, _accel._scrambled((7, 28), 2.0, 12347))


class _Idle:
    """A kernel that computes nothing (leaves h as it found it)."""

    def run(self, *args):
        pass

    def pack_size(self, *args):
        return 4096

    def pack(self, *args):
        pass

    def run_packed(self, *args):
        pass


def test_self_test_fails_a_kernel_that_computes_nothing():
    blas = SimpleNamespace(gemm=0, gemv=0, ilp64=False, source="a test BLAS")
    assert "self-test failed with a test BLAS" in _accel._self_test(_Idle(), blas, False)
    assert "packed product failed" in _accel._self_test(_Idle(), None, True)
