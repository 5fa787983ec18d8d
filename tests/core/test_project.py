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

from ssl_studio.core import project
from ssl_studio.core.project import pca_2d, umap_2d

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
    np.testing.assert_array_equal(umap_2d(x), pca_2d(x))


def test_umap_in_a_fresh_process_is_lazy_and_caches_its_jit(tmp_path):
    """One slow test (umap-learn JIT-compiles on first use), in a subprocess so it sees a cold start."""
    script = """
import json, os, sys
import numpy as np
import ssl_studio.core.project as project
lazy = "umap" not in sys.modules and "numba" not in sys.modules
x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
x[150:] += 5.0
fit = project.iter_umap_2d(x, seed=0, label="a map")
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
    # umap-learn compiles this kernel with cache=False; the app caches it too (see project._import_umap).
    assert any((tmp_path / "numba").rglob("umap_.smooth_knn_dist-*.nbi"))


def test_a_umap_fit_stops_when_cancelled():
    from ssl_studio.core.cancel import CancelToken, Cancelled
    from ssl_studio.core.project import stop_umap_worker

    cancel = CancelToken()
    cancel.cancel()
    x = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    with pytest.raises(Cancelled):
        umap_2d(x, cancel=cancel)
    stop_umap_worker()  # idempotent: the cancel already stopped it


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

    pid = project._in_worker(os.getpid, None)  # starts the process with a trivial task
    try:
        project.pause_umap_worker(True)
        assert stopped(pid)
        project.pause_umap_worker(False)
        assert not stopped(pid, within_s=0)
        assert project._in_worker(os.getpid, None) == pid  # it still works
    finally:
        project.stop_umap_worker()

    # Paused before it exists (training began before the warm-up's process did): it starts paused.
    project.pause_umap_worker(True)
    answer = []
    asking = threading.Thread(target=lambda: answer.append(project._in_worker(os.getpid, None)))
    try:
        asking.start()
        deadline = time.monotonic() + 60
        while not (project._worker and project._worker._processes) and time.monotonic() < deadline:
            time.sleep(0.01)
        (process,) = project._worker._processes.values()
        assert stopped(process.pid)
        project.pause_umap_worker(False)
        asking.join(60)
        assert answer == [process.pid]
    finally:
        project.pause_umap_worker(False)
        project.stop_umap_worker()
