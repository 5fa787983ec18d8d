"""A process killed (SIGKILL, no clean-up of any kind) while writing a checkpoint leaves the previous one intact.

Importing torch costs seconds on 2 cores, so one helper process imports it once and forks a fresh writer for each
round; the test kills that writer with a real SIGKILL, then loads what is on disk. Some rounds kill it at a random
moment. The others make sure the kill lands mid-write: the writer's file writes are wrapped so that one of them
stops half-way through its temporary file and says which file that is; the writer is killed right then, and the
test checks that this very file, a fresh name no earlier round left, is on disk half-written.
"""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import torch

from ssl_studio.core.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ELEMENTS = 4_000_000  # 16 MB per tensor: a write takes tens of milliseconds, long enough to be hit mid-way

# Input, one line per round: "START SAVES [FILE]": write versions START, START+1, ... and with FILE ("safetensors"
# or "json"), after SAVES saves, stop half-way through writing that file's temporary copy and print "inside NAME".
ZYGOTE = textwrap.dedent(f"""
    import os, pathlib, sys, time, torch
    from ssl_studio.core.checkpoint import save_checkpoint
    path = sys.argv[1]
    for line in sys.stdin:
        start, saves, *stop_in = line.split()
        pid = os.fork()
        if pid == 0:
            if stop_in:
                real_write_bytes = pathlib.Path.write_bytes

                def write_bytes(self, data):
                    if not (self.name.startswith(f".ck.{{stop_in[0]}}.") and done == int(saves)):
                        return real_write_bytes(self, data)
                    with open(self, "wb") as f:
                        f.write(data[: len(data) // 2])
                    print("inside", self.name, len(data) // 2, flush=True)
                    time.sleep(3600)  # until the SIGKILL

                pathlib.Path.write_bytes = write_bytes
            version, done = int(start), 0
            while True:
                big = torch.full(({ELEMENTS},), float(version))
                save_checkpoint(path, {{"big": big, "small": torch.full((7,), 2.0 * version)}},
                                {{"version": version}})
                done += 1
                print("saved", version, flush=True)
                version += 1
        print("pid", pid, flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)
""")

# The first round must complete one save (there is no previous checkpoint to keep before that).
ROUNDS = [(1, None), (0, "safetensors"), (None, None), (2, "json"), (None, None), (1, "safetensors")]


def test_sigkill_while_saving_never_corrupts_the_checkpoint(tmp_path):
    path = tmp_path / "ck.safetensors"
    rng = random.Random(5)
    # In a process group of its own, with its writers, so that all of them can be killed at once.
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(path)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
    # A writer that never reaches a temporary file would leave the test waiting: killed after a generous while.
    watchdog = threading.Timer(300, os.killpg, (zygote.pid, signal.SIGKILL))
    watchdog.start()

    def read() -> tuple[str, list[str]]:
        line = zygote.stdout.readline()
        assert line, "the writer stopped answering (it never stopped inside a temporary checkpoint file?)"
        word, *rest = line.split()
        return word, rest

    version, sidecar, stopped_in = -1, None, set()
    try:
        for want, stop_in in ROUNDS:
            want = rng.randint(0, 2) if want is None else want
            zygote.stdin.write(f"{version + 1} {want} {stop_in or ''}\n")
            zygote.stdin.flush()
            saved, pid, inside = [], None, None
            while pid is None or len(saved) < want or (stop_in and inside is None):
                word, rest = read()
                if word == "pid":
                    pid = int(rest[0])
                elif word == "saved":
                    saved.append(int(rest[0]))
                elif word == "inside":
                    inside = (rest[0], int(rest[1]))
            if not stop_in:
                time.sleep(rng.uniform(0, 0.08))
            os.kill(pid, signal.SIGKILL)
            while (answer := read())[0] != "reaped":
                saved.append(int(answer[1][0]))

            tensors, meta = load_checkpoint(path)
            sidecar_before, sidecar = sidecar, json.loads(path.with_suffix(".json").read_text())["version"]
            last_confirmed = max(saved, default=version)
            if stop_in:
                name, size = inside
                assert name not in stopped_in and (tmp_path / name).stat().st_size == size > 0  # this kill's file
                stopped_in.add(name)
                # Killed inside the checkpoint's write: the previous one stays. Inside the sidecar's: the checkpoint
                # was already replaced, the sidecar still describes the one before.
                assert meta["version"] == last_confirmed + (stop_in == "json")
                assert sidecar == (saved[-1] if saved else sidecar_before)
            else:
                # The writer may have replaced the file and died before saying so: one version ahead at most.
                assert last_confirmed <= meta["version"] <= last_confirmed + 1
                # The JSON sidecar is written second: this version or, killed in between, the one before.
                assert sidecar in (meta["version"] - 1, meta["version"])
            version = meta["version"]
            assert set(tensors) == {"big", "small"} and tensors["big"].shape == (ELEMENTS,)
            assert torch.all(tensors["big"] == version) and torch.all(tensors["small"] == 2.0 * version)
            # A kill leaves at most hidden temp files behind, never anything named like a checkpoint.
            assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")} == {"ck.safetensors",
                                                                                        "ck.json"}
    finally:
        watchdog.cancel()
        zygote.stdin.close()
        os.killpg(zygote.pid, signal.SIGKILL)
        zygote.wait()
    assert version >= 1 and len(stopped_in) == 3
