"""Training in a child process (what the app's worker thread supervises), without Qt."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("keras")

import lstmviz
from lstmviz.train.process import ProcessTrainingError, train_in_process
from lstmviz.train.tasks import Batch, TrainConfig, get_task


def test_messages_summary_and_save(tmp_path):
    msgs = []
    cfg = TrainConfig(epochs=2, batch_size=16, units=8, steps_per_epoch=5, snapshot_every=2)
    s = train_in_process(
        get_task("binary-addition"), cfg, on_message=lambda k, o: msgs.append((k, o))
    )
    kinds = {k for k, _ in msgs}
    assert {"phase", "logs", "snapshot"} <= kinds
    steps = [b.step for k, o in msgs if k == "logs" for b in o]
    assert steps == list(range(1, 11))
    snaps = [o for k, o in msgs if k == "snapshot"]
    assert [x.step for x in snaps] == [0, 2, 4, 5, 6, 8, 10]
    assert s.steps == 10 and not s.stopped and 0 <= s.metrics["heldout_accuracy"] <= 1
    out = s.save(str(tmp_path / "adder.keras"))
    m = lstmviz.load_model(out)
    x = get_task("binary-addition").heldout()[0].x[:3]
    np.testing.assert_allclose(
        m.trace(x).output, snaps[-1].engine_model().trace(x).output, atol=1e-6
    )
    assert lstmviz.io.meta.load_info(out).task == "binary-addition"
    s.cleanup()


def test_cancel_reaches_the_child():
    seen = []
    cfg = TrainConfig(epochs=100, batch_size=8, units=4, steps_per_epoch=100)
    s = train_in_process(
        get_task("digit-sum"),
        cfg,
        on_message=lambda k, o: seen.extend(o) if k == "logs" else None,
        should_stop=lambda: len(seen) >= 3,
        log_interval=0.0,
    )
    assert s.stopped and s.steps < 100  # stopped long before 10,000 batches
    s.cleanup()


class _Broken:
    def __getattr__(self, k):
        if k.startswith("__"):
            raise AttributeError(k)
        return getattr(get_task("digit-sum"), k)

    def batch(self, rng, n, step=0):
        b = get_task("digit-sum").batch(rng, n, step)
        return Batch(np.full_like(b.x, np.inf), b.y, b.y_final) if step == 2 else b


def test_failure_carries_the_last_good_model():
    cfg = TrainConfig(epochs=1, batch_size=8, units=4, steps_per_epoch=6)
    with pytest.raises(ProcessTrainingError, match="loss became nan") as ei:
        train_in_process(_Broken(), cfg, on_message=lambda k, o: None)
    assert ei.value.summary is not None and ei.value.summary.steps == 2
    ei.value.summary.cleanup()


def test_keras_engine_process_traces_reuses_itself_and_reports_errors():
    from lstmviz.errors import LstmvizError
    from lstmviz.examples import EXAMPLES_DIR
    from lstmviz.train.process import KerasEngineProcess

    m = lstmviz.load_model(EXAMPLES_DIR / "digit_sum.keras")
    x = np.eye(10, dtype=np.float32)[[[4, 7, 3, 9, 1], [1, 2, 3, 4, 5]]]
    ref = m.trace(x)
    eng = KerasEngineProcess(threads=1)
    try:
        tr = eng.trace(m, x)
        assert tr.engine == "keras" and eng.running
        pid = eng._proc.pid
        for a, b in zip(tr.layers, ref.layers, strict=True):
            for q in ("forget_gate", "input_gate", "candidate", "output_gate", "cell", "hidden"):
                np.testing.assert_allclose(a.get(q), b.get(q), atol=1e-5, err_msg=q)
        np.testing.assert_allclose(tr.output, ref.output, atol=1e-5)
        with pytest.raises(LstmvizError, match=r"features|expects"):
            eng.trace(m, np.zeros((1, 4, 3), np.float32))  # 3 features, not 10
        assert eng.running and eng._proc.pid == pid  # an error does not end the process
        assert eng.trace(m, x, should_stop=lambda: True) is None  # given up: no wait
        again = eng.trace(m, x[:1])  # the dropped answer is not mistaken for this one
        assert again.layer(0).batch_size == 1 and eng._proc.pid == pid
        eng._proc.kill()  # the process dies (out of memory, say): the next trace restarts it
        eng._proc.join(10)
        assert not eng.running
        restarted = eng.trace(m, x)
        assert eng._proc.pid != pid
        np.testing.assert_allclose(restarted.output, tr.output, atol=1e-6)
    finally:
        eng.shutdown()
    assert not eng.running


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_keras_engine_process_ends_when_the_app_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "app.py"
    script.write_text(
        "import time, numpy as np, lstmviz\n"
        "from lstmviz.examples import EXAMPLES_DIR\n"
        "from lstmviz.train.process import KerasEngineProcess\n"
        "m = lstmviz.load_model(EXAMPLES_DIR / 'digit_sum.keras')\n"
        "e = KerasEngineProcess()\n"
        "e.trace(m, np.eye(10, dtype=np.float32)[[[1, 2, 3]]])\n"
        "print(e._proc.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    app = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        child = int(app.stdout.readline())
        os.kill(app.pid, signal.SIGKILL)  # no atexit, no shutdown(): a crash
        app.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail("the Keras engine's process outlived the killed app")
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        app.stdout.close()
