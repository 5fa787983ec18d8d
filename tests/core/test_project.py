import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ssl_studio.core.cancel import drain
from ssl_studio.core.project import pca_2d
from ssl_studio.core.umap_process import UMAP

ROOT = Path(__file__).resolve().parents[2]


def test_pca_finds_the_direction_of_largest_spread():
    rng = np.random.default_rng(0)
    t = rng.normal(size=100)
    x = np.stack([t * 10, rng.normal(scale=0.01, size=100), np.zeros(100)], axis=1)
    out = pca_2d(x)
    assert out.dtype == np.float32 and out.shape == (100, 2)
    assert abs(np.corrcoef(out[:, 0], t)[0, 1]) > 0.999
    assert out[:, 0].std() > 100 * out[:, 1].std()
    np.testing.assert_array_equal(out, pca_2d(x))


@pytest.mark.parametrize("shape", [(5, 1), (1, 4), (2, 4), (3, 4), (0, 3)])
def test_pca_pads_what_the_data_lacks_with_zeros(shape):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    out = pca_2d(x)
    assert out.shape == (shape[0], 2) and out.dtype == np.float32 and np.all(np.isfinite(out))
    if shape[1] == 1 or shape[0] <= 2:
        assert np.all(out[:, 1] == 0)


def test_umap_falls_back_to_pca_below_four_points():
    x = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0], [3.0, 3.0, 3.0]])
    np.testing.assert_array_equal(drain(UMAP.fit(x)), pca_2d(x))


def test_umap_in_a_fresh_process_is_lazy_and_caches_its_jit(tmp_path):
    """One slow test (umap-learn JIT-compiles on first use), in a subprocess so it sees a cold start."""
    script = """
import json, os, sys
import numpy as np
from ssl_studio.core.umap_process import UMAP
lazy = "umap" not in sys.modules and "numba" not in sys.modules
x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
x[150:] += 5.0
fit = UMAP.fit(x, seed=0, label="a map")
reports = []
while True:
    try:
        reports.append(next(fit))
    except StopIteration as stop:
        out = stop.value
        break
# The two blobs stay apart in the map (exact neighbours under project.APPROXIMATE_FROM points).
a, b = out[:150], out[150:]
apart = bool(np.linalg.norm(a.mean(0) - b.mean(0)) > 3 * max(a.std(0).max(), b.std(0).max()))
print(json.dumps({"lazy": lazy, "shape": out.shape, "dtype": str(out.dtype), "apart": apart,
                  "finite": bool(np.isfinite(out).all()), "numba_cache": os.environ["NUMBA_CACHE_DIR"],
                  "reports": [[r.label, r.stage, r.done, r.total] for r in reports]}))
"""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["SSL_STUDIO_CACHE_DIR"] = str(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    reports = result.pop("reports")
    assert result == {"lazy": True, "shape": [300, 2], "dtype": "float32", "finite": True, "apart": True,
                      "numba_cache": str(tmp_path / "numba")}  # fmt: skip
    # The child's progress: the neighbour graph first, then the layout's epochs counted up to their total (the
    # last of them too, though the map comes by another pipe than the reports).
    assert reports[0] == ["a map", "neighbours", 0, 0]
    layout = [r for r in reports[1:] if r[1] == "layout"]
    assert len(layout) == len(reports) - 1 and layout[-1][2] == layout[-1][3] > 0
    assert [r[2] for r in layout] == sorted(r[2] for r in layout)
    assert any((tmp_path / "numba").rglob("*.nbi")), "numba's compiled code should be cached for the next launch"
    # umap-learn compiles this kernel with cache=False; the app caches it too (see core.project._import_umap).
    assert any((tmp_path / "numba").rglob("umap_.smooth_knn_dist-*.nbi"))


def test_a_task_s_result_comes_after_every_report_it_sent():
    """The result comes by the executor's pipe and the reports by their queue; the task's end marker on the queue
    orders them. A task that reports 300 times and returns at once is the race at its sharpest."""
    from ssl_studio.core.project import UmapProgress
    from ssl_studio.core.umap_process import report

    sent = [UmapProgress("t", "layout", i, 300) for i in range(1, 301)]
    try:
        for _ in range(5):
            # list(map(report, sent)) in the process: each report sent, then the Nones returned.
            task = UMAP.run(list, map(report, sent))
            received = list(itertools.islice(task, 300))  # fewer if the task ended first
            result = drain(task)  # nothing more is reported: the result
            assert received == sent and result == [None] * 300
    finally:
        UMAP.stop()


def test_a_umap_fit_stops_when_cancelled():
    from ssl_studio.core.cancel import CancelToken, Cancelled

    cancel = CancelToken()
    cancel.cancel()
    x = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    with pytest.raises(Cancelled):
        drain(UMAP.fit(x, cancel=cancel))
    UMAP.stop()  # idempotent: the cancel already stopped it


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP") or not Path("/proc/self/stat").exists(),
                    reason="pausing the UMAP process needs POSIX signals; its state is read from /proc")
def test_the_umap_process_can_be_paused_while_training_runs():
    def stopped(pid, within_s=10.0) -> bool:
        """Whether the process is stopped (T in /proc), waiting for a signal already sent to land."""
        deadline = time.monotonic() + within_s
        while True:
            is_stopped = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
            if is_stopped or time.monotonic() > deadline:
                return is_stopped
            time.sleep(0.01)

    pid = UMAP.start()  # starts the process with a trivial task
    try:
        UMAP.pause(True)
        assert stopped(pid)
        UMAP.pause(False)
        assert not stopped(pid, within_s=0)
        assert drain(UMAP.run(os.getpid)) == pid  # it still works
    finally:
        UMAP.stop()

    # Paused before it exists (training began before the warm-up's process did): it starts paused.
    UMAP.pause(True)
    answer = []
    asking = threading.Thread(target=lambda: answer.append(UMAP.start()))
    try:
        asking.start()
        deadline = time.monotonic() + 60
        while UMAP.pid is None and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = UMAP.pid
        assert stopped(pid)
        UMAP.pause(False)
        asking.join(60)
        assert answer == [pid]
    finally:
        UMAP.pause(False)
        UMAP.stop()
