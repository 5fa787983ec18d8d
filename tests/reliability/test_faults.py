"""Faults during a run: cancel anywhere, Ctrl-C then --resume, diverging loss, out of memory, a full disk or a
read-only run folder. Each ends with a clear message and leaves nothing half-written that looks valid."""

import errno
import json
import math
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from reliability_corpus import FAST, ROOT, cli_command, cli_env
from ssl_studio.cli import main
from ssl_studio.core import atomic
from ssl_studio.core import spaces as spaces_module
from ssl_studio.core import train as train_module
from ssl_studio.core.cancel import Cancelled, CancelToken
from ssl_studio.core.checkpoint import load_checkpoint
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.data import LoadProgress
from ssl_studio.core.methods import simclr
from ssl_studio.core.events import PipelineFinished, ProjectionReady, StageStarted, TrainEvent
from ssl_studio.core.pipeline import open_run, run_pipeline
from ssl_studio.core.runs import RunError
from ssl_studio.core.train import TrainFinished, TrainProgress

CONFIG = TrainConfig(epochs=3, time_budget=None, batch_size=8, resolution=16, device="cpu")


def assert_nothing_half_written(out: Path) -> None:
    """No temp file is left, every file that is there is whole, and an unfinished run has no metrics.json."""
    if not out.exists():
        return
    assert not [p.name for p in out.rglob(".*.tmp")]
    for path in out.rglob("*.json"):
        json.loads(path.read_text())
    for path in out.rglob("*.npy"):
        np.load(path, allow_pickle=False)
    for path in out.glob("*.safetensors"):
        load_checkpoint(path)


def is_ssl_step(e):
    return isinstance(e, TrainEvent) and e.which == "ssl" and isinstance(e.event, TrainProgress)


def is_supervised_step(e):
    return isinstance(e, TrainEvent) and e.which == "supervised" and isinstance(e.event, TrainProgress)


CANCEL_POINTS = {
    "loading": lambda e: isinstance(e, LoadProgress),
    "ssl training": is_ssl_step,
    "between the two trainings": lambda e: isinstance(e, TrainEvent) and isinstance(e.event, TrainFinished),
    "supervised training": is_supervised_step,
    "maps": lambda e: isinstance(e, ProjectionReady),
}


@pytest.mark.parametrize("point", CANCEL_POINTS)
def test_cancel_at_any_point_then_resume_finishes(labeled, tmp_path, monkeypatch, point):
    monkeypatch.setattr(train_module, "REPORT_EVERY_S", 0.0)  # a progress event after every step
    out, token, events = tmp_path / "run", CancelToken(), []
    try:
        for event in run_pipeline(labeled, out, CONFIG, cancel=token, use_umap=False, skip=("transfer",)):
            events.append(event)
            if not token.cancelled and CANCEL_POINTS[point](event):
                token.cancel()
    except Cancelled:
        pass
    assert token.cancelled and not any(isinstance(e, PipelineFinished) for e in events)
    assert_nothing_half_written(out)
    assert not (out / "metrics.json").exists()
    if point == "loading":
        assert not out.exists()  # nothing was written yet, so there is nothing to resume
        with pytest.raises(RunError, match=f"{re.escape(str(out))} is not a folder"):
            list(run_pipeline(labeled, out, CONFIG, resume=True, use_umap=False, skip=("transfer",)))
        return
    interrupted = {w: load_checkpoint(out / f"{w}.safetensors")[1] for w in ("ssl", "supervised")
                   if (out / f"{w}.safetensors").exists()}
    resumed = list(run_pipeline(labeled, out, CONFIG, resume=True, use_umap=False, skip=("transfer",)))
    assert isinstance(resumed[-1], PipelineFinished)
    trained_again = {e.name for e in resumed if isinstance(e, StageStarted) and e.name in ("ssl", "supervised")}
    assert trained_again == {w for w in ("ssl", "supervised") if not interrupted.get(w, {}).get("finished")}
    for which, before in interrupted.items():
        after = load_checkpoint(out / f"{which}.safetensors")[1]
        assert after["finished"] and after["history"][: len(before["history"])] == before["history"]
    assert open_run(out).metrics["train"]["ssl"]["finished"]


def test_ctrl_c_writes_a_checkpoint_and_resume_continues_the_loss_curve(labeled, tmp_path):
    out = tmp_path / "run"
    # A time budget, not epochs: training lasts 3 s on any machine, so Ctrl-C lands in it, a few steps in.
    command = cli_command("run", str(labeled), "--out", str(out), "--time-budget", "3", *FAST[2:])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="backslashreplace", env=cli_env(), cwd=ROOT)
    err = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        text = "".join(err)
        if "Training self-supervised" in text and "loss=" in text.split("Training self-supervised", 1)[1]:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    reader.join(timeout=10)
    text = "".join(err)
    assert "continue with --resume" in text and "Traceback" not in text
    assert not (out / "metrics.json").exists()
    assert_nothing_half_written(out)
    before = load_checkpoint(out / "ssl.safetensors")[1]
    total = before["step"]
    assert before["finished"] is False and 0 < before["step"]

    assert main(["run", str(labeled), "--out", str(out), "--resume", "--no-umap", "--no-transfer"]) == 0
    after = load_checkpoint(out / "ssl.safetensors")[1]
    steps = [s for s, _, _ in after["history"]]
    assert after["finished"] and after["history"][: len(before["history"])] == before["history"]
    assert steps == sorted(set(steps)) and steps[-1] == after["step"] > total
    assert before["elapsed"] < 3 <= after["elapsed"] < 6  # the budget counts both parts, once
    elapsed = [t for _, t, _ in after["history"]]
    assert elapsed == sorted(elapsed)
    assert all(math.isfinite(loss) for _, _, loss in after["history"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["ssl"]["steps"] == after["step"] and metrics["train"]["supervised"]["finished"]


@pytest.mark.parametrize("bad", [math.nan, math.inf], ids=["nan", "inf"])
def test_a_diverging_loss_stops_the_run_with_a_message(labeled, tmp_path, monkeypatch, capsys, bad):
    real = simclr.info_nce
    monkeypatch.setattr(simclr, "info_nce", lambda *a, **kw: real(*a, **kw) * bad)
    out = tmp_path / "run"
    assert main(["run", str(labeled), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "diverged" in err and "lower learning rate" in err and "Traceback" not in err
    assert_nothing_half_written(out)
    assert not (out / "metrics.json").exists()


def out_of_memory(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_out_of_memory_while_training_suggests_a_smaller_batch(labeled, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(simclr.SimCLR, "forward", out_of_memory)
    assert main(["run", str(labeled), "--out", str(tmp_path / "run"), *FAST]) == 2  # FAST: --batch-size 8
    err = capsys.readouterr().err
    assert "out of memory" in err and "try 4" in err and "Traceback" not in err


def test_out_of_memory_while_embedding_retries_smaller_batches_then_explains(labeled, tmp_path, monkeypatch,
                                                                             capsys):
    real_embed, batches = spaces_module.embed, []

    def embed(*args, batch_size, **kwargs):
        batches.append(batch_size)
        if batch_size > limit:
            out_of_memory()
        return real_embed(*args, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(spaces_module, "embed", embed)
    limit = 32
    assert main(["run", str(labeled), "--out", str(tmp_path / "run"), *FAST]) == 0
    assert batches == [512, 128, 32] * 3  # ssl, supervised and untrained networks, each retried smaller
    limit = 0
    assert main(["run", str(labeled), "--out", str(tmp_path / "run2"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "out of memory" in err and "--device cpu" in err and "Traceback" not in err
    assert not (tmp_path / "run2" / "metrics.json").exists()


# Mounting needs CAP_SYS_ADMIN, which a user and mount namespace of its own gives a process where the kernel allows
# unprivileged namespaces (`unshare -rm`): the command line runs there, after SETUP has mounted what it needs, and
# the mounts go with the namespace.
def in_namespace(setup: str, args: list[str], after: str = ":") -> subprocess.CompletedProcess:
    """`ssl-studio ARGS` in a new user and mount namespace, after the shell commands SETUP and before AFTER (its exit
    code kept); skips where no namespace can be made or SETUP cannot mount there."""
    script = f'{setup} || exit 99; "$@"; code=$?; {after}; exit $code'
    try:
        done = subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", *cli_command(*args)], capture_output=True,
                              text=True, errors="backslashreplace", env=cli_env(), cwd=ROOT, timeout=300)
    except FileNotFoundError:
        pytest.skip("no unshare (util-linux) to make a user and mount namespace")
    if done.returncode == 99 or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount in a user and mount namespace here: {done.stderr.strip()[-200:]}")
    return done


def test_a_really_full_disk_gives_a_clear_error(labeled, tmp_path):
    """A real 256 KB file system (tmpfs), where a checkpoint cannot fit; what the run left is copied out before the
    namespace, and its tmpfs, go."""
    disk, kept = tmp_path / "tiny", tmp_path / "kept"
    disk.mkdir()
    kept.mkdir()
    out = disk / "run"
    done = in_namespace(f"mount -t tmpfs -o size=256k tmpfs '{disk}'", ["run", str(labeled), "--out", str(out), *FAST],
                        after=f"cp -a '{disk}/.' '{kept}'")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "No space left on device (disk full)" in done.stderr
    assert_nothing_half_written(kept / "run")
    assert not (kept / "run" / "ssl.safetensors").exists() and not (kept / "run" / "metrics.json").exists()


# A full disk is also simulated, at each kind of write in turn: ENOSPC raised where the atomic writer moves a
# finished temp file into place (the point every write in the app goes through), where no tmpfs can be mounted.
@pytest.mark.parametrize("target", ["config.json", "ssl.safetensors", "ssl.npy", "metrics.json"])
def test_a_full_disk_at_any_write_gives_a_clear_error(labeled, tmp_path, monkeypatch, capsys, target):
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == target:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", replace)
    out = tmp_path / "run"
    assert main(["run", str(labeled), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err
    assert "No space left on device (disk full)" in err and str(out) in err
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert_nothing_half_written(out)
    assert not (out / "metrics.json").exists()


NOBODY = 65534
# Root ignores permission bits, so as root the run is a process of user nobody. It keeps one capability, reading
# and searching any file (the checkout, the interpreter, the test's folders); writing follows the permission bits.
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search"]


def can_run_as_nobody() -> bool:
    try:
        return subprocess.run([*AS_NOBODY, "true"], capture_output=True).returncode == 0
    except FileNotFoundError:  # no setpriv (util-linux)
        return False


@pytest.fixture(params=["read-only mount", "no write permission"])
def read_only(request, tmp_path, isolated_cache):
    """make(folder): turn an existing folder read-only for real, by a read-only bind mount (EROFS, in the namespace
    the command line then runs in) or by its permission bits (EACCES); then cli(args) runs `ssl-studio ARGS` and
    gives (exit code, stderr)."""
    mounted, as_nobody = [], request.param == "no write permission" and os.geteuid() == 0
    if as_nobody and not can_run_as_nobody():
        pytest.skip("running as root, which ignores permission bits, and setpriv cannot start a process as "
                    "user nobody here")

    def make(folder: Path) -> None:
        if request.param == "read-only mount":
            mounted.append(folder)
        else:
            folder.chmod(0o555)

    def cli(args: list[str], capsys) -> tuple[int, str]:
        if mounted:
            done = in_namespace(" && ".join(f"mount --bind '{f}' '{f}' && mount -o remount,bind,ro '{f}' '{f}'"
                                            for f in mounted), args)
            return done.returncode, done.stderr
        if not as_nobody:
            return main(args), capsys.readouterr().err
        home = tmp_path / "home"  # where nobody may write: its caches, and matplotlib's
        for writable in (home, isolated_cache):
            writable.mkdir(exist_ok=True)
            os.chown(writable, NOBODY, NOBODY)
        env = {**cli_env(), "HOME": str(home), "MPLCONFIGDIR": str(home)}
        done = subprocess.run([*AS_NOBODY, *cli_command(*args)], capture_output=True, text=True,
                              errors="backslashreplace", env=env, cwd=ROOT, timeout=300)
        return done.returncode, done.stderr

    yield make, cli, {"read-only mount": errno.EROFS, "no write permission": errno.EACCES}[request.param]
    for folder in tmp_path.rglob("*"):
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o755)  # so that pytest can remove it


def test_a_read_only_run_folder_gives_a_clear_error_and_writes_nothing(labeled, tmp_path, capsys, read_only):
    make, cli, code = read_only
    out = tmp_path / "run"
    out.mkdir()
    make(out)
    exit_code, err = cli(["run", str(labeled), "--out", str(out), *FAST], capsys)
    assert exit_code == 2 and "Traceback" not in err
    assert f"error: cannot write the run folder {out}: {os.strerror(code)}" in err
    assert list(out.iterdir()) == []


def test_a_folder_that_turns_out_read_only_mid_run_gives_a_clear_error(labeled, tmp_path, capsys, read_only):
    """The maps' folder is read-only: the run trains and embeds, then stops at its first map with a message,
    keeping what it wrote (so --resume can finish it once the folder can be written)."""
    make, cli, code = read_only
    out = tmp_path / "run"
    (out / "projections").mkdir(parents=True)
    out.chmod(0o777)  # writable for the run, whichever user it runs as (nobody, or root in its own namespace)
    make(out / "projections")
    exit_code, err = cli(["run", str(labeled), "--out", str(out), *FAST], capsys)
    assert exit_code == 2 and "Traceback" not in err
    assert f"error: cannot write to the run folder {out}: {os.strerror(code)}" in err
    assert list((out / "projections").iterdir()) == []
    assert load_checkpoint(out / "ssl.safetensors")[1]["finished"] and (out / "embeddings" / "ssl.npy").is_file()
    assert_nothing_half_written(out)
    assert not (out / "metrics.json").exists()
