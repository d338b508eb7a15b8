"""A corpus traced on a 2-worker dask.distributed LocalCluster (separate processes) equals one
traced in this process, and the search and statistics give the same answers there."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from lstmviz.analysis import find_pattern, trace_corpus, unit_stats

from .helpers import make_model

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as lc,
        distributed.Client(lc, set_as_default=False) as client,
    ):
        yield lc, client


def _same_store(a, b):
    assert a.layers == b.layers and a.quantities == b.quantities and a.n_steps == b.n_steps
    np.testing.assert_array_equal(a.offsets, b.offsets)
    np.testing.assert_array_equal(a.block_done, b.block_done)
    np.testing.assert_array_equal(np.asarray(a.inputs()[:]), np.asarray(b.inputs()[:]))
    for name in a.layers:
        for q in a.quantities:
            np.testing.assert_array_equal(
                np.asarray(a.array(name, q)[:]), np.asarray(b.array(name, q)[:])
            )
    skip = {"created", "scheduler", "seconds"}
    assert {k: v for k, v in a.manifest.items() if k not in skip} == {
        k: v for k, v in b.manifest.items() if k not in skip
    }


def test_cluster_trace_equals_in_process(cluster, tmp_path):
    lc, client = cluster
    m = make_model(vocab=30, embed=5, units=7, stacked=5, head=None, seed=11)
    rng = np.random.default_rng(12)
    # many blocks of 64 positions; the 300-step sequence makes tasks hand states on
    seqs = [rng.integers(0, 30, int(n)) for n in rng.integers(1, 60, 40)]
    seqs.insert(17, rng.integers(0, 30, 300))
    kw = {"quantities": ("hidden", "cell", "input_gate"), "block_steps": 64}
    here = trace_corpus(m, seqs, tmp_path / "here.zarr", **kw)
    calls = []
    with distributed.get_task_stream(client=client) as stream:
        there = trace_corpus(
            m,
            seqs,
            tmp_path / "there.zarr",
            lambda a, b: calls.append((a, b)),
            scheduler=client,
            **kw,
        )
    assert there.complete and there.manifest["scheduler"].startswith("dask.distributed")
    # the tracing tasks ran in the cluster's two worker processes, not in this one
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    ran_on = {t["worker"] for t in stream.data}
    assert stream.data and ran_on <= set(workers)
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    assert calls[-1] == (here.n_steps, here.n_steps)
    _same_store(here, there)
    # by address, as `--scheduler ADDRESS` does
    by_address = trace_corpus(m, seqs, tmp_path / "addr.zarr", scheduler=lc.scheduler_address, **kw)
    _same_store(here, by_address)

    t0 = int(here.offsets[17]) + 5
    local = find_pattern(here, [0, 1], t0, t0 + 3, 0.0, chunk=128, max_matches=10)
    remote = find_pattern(
        there, [0, 1], t0, t0 + 3, 0.0, chunk=128, max_matches=10, scheduler=client
    )
    assert remote == local and local.n_matches > 0
    s_local = unit_stats(here, "lstm_2", "cell", threshold=0.1)
    s_remote = unit_stats(there, "lstm_2", "cell", threshold=0.1, scheduler=client)
    for f in ("mean", "std", "min", "max", "on_fraction"):
        np.testing.assert_allclose(getattr(s_remote, f), getattr(s_local, f), rtol=1e-12)


def test_cli_scheduler_address(cluster, tmp_path, capsys):
    from lstmviz.analysis import open_corpus
    from lstmviz.cli import main

    lc, _client = cluster
    ids = np.random.default_rng(3).integers(1, 40, (12, 30))
    np.save(tmp_path / "ids.npy", ids)
    common = ["corpus", "trace", "char_textgen", "--input", str(tmp_path / "ids.npy")]
    assert main([*common, "--out", str(tmp_path / "here.zarr")]) == 0
    assert (
        main([*common, "--out", str(tmp_path / "there.zarr"), "--scheduler", lc.scheduler_address])
        == 0
    )
    assert "dask.distributed" in capsys.readouterr().out
    _same_store(open_corpus(tmp_path / "here.zarr"), open_corpus(tmp_path / "there.zarr"))
    find = ["corpus", "find", "--range", "3:5", "--threshold", "-0.99", "--units", "0,1"]
    assert main([*find[:2], str(tmp_path / "here.zarr"), *find[2:]]) == 0
    here = capsys.readouterr().out
    assert (
        main(
            [
                *find[:2],
                str(tmp_path / "there.zarr"),
                *find[2:],
                "--scheduler",
                lc.scheduler_address,
            ]
        )
        == 0
    )
    there = capsys.readouterr().out
    # the same matches (the first line also holds the time taken)
    assert here.splitlines()[1:] == there.splitlines()[1:] and len(here.splitlines()) > 2
