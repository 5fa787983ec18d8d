"""A process killed (SIGKILL, no clean-up of any kind) while writing a checkpoint leaves the previous one intact.

Importing torch costs seconds on 2 cores, so one helper process imports it once and forks a fresh writer for each
round; the test kills that writer with a real SIGKILL, sometimes at a random moment, sometimes exactly while a
temporary file is being written, and then loads what is on disk.
"""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from ssl_studio.core.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ELEMENTS = 4_000_000  # 16 MB per tensor: a write takes tens of milliseconds, long enough to be hit mid-way

ZYGOTE = textwrap.dedent(f"""
    import os, sys, torch
    from ssl_studio.core.checkpoint import save_checkpoint
    path = sys.argv[1]
    for line in sys.stdin:
        start = int(line)
        pid = os.fork()
        if pid == 0:
            version = start
            while True:
                big = torch.full(({ELEMENTS},), float(version))
                save_checkpoint(path, {{"big": big, "small": torch.full((7,), 2.0 * version)}},
                                {{"version": version}})
                print("saved", version, flush=True)
                version += 1
        print("pid", pid, flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)
""")


def test_sigkill_while_saving_never_corrupts_the_checkpoint(tmp_path):
    path = tmp_path / "ck.safetensors"
    rng = random.Random(5)
    zygote = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(path)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    version, killed_mid_write = -1, 0
    try:
        for round_ in range(6):
            zygote.stdin.write(f"{version + 1}\n")
            zygote.stdin.flush()
            saved, pid = [], None
            # The first round must complete one save (there is no previous checkpoint to keep before that).
            want = 1 if round_ == 0 else rng.randint(0, 2)
            while pid is None or len(saved) < want:
                word, *rest = zygote.stdout.readline().split()
                if word == "pid":
                    pid = int(rest[0])
                elif word == "saved":
                    saved.append(int(rest[0]))
            if round_ % 2:
                deadline = time.monotonic() + 10
                while not any(tmp_path.glob(".ck.safetensors.*.tmp")) and time.monotonic() < deadline:
                    time.sleep(0.0005)
            else:
                time.sleep(rng.uniform(0, 0.08))
            os.kill(pid, signal.SIGKILL)
            for line in iter(zygote.stdout.readline, ""):
                word, *rest = line.split()
                if word == "reaped":
                    break
                saved.append(int(rest[0]))
            killed_mid_write += any(tmp_path.glob(".ck.safetensors.*.tmp"))

            tensors, meta = load_checkpoint(path)
            last_confirmed = max(saved, default=version)
            # The writer may have replaced the file and died before saying so: one version ahead at most.
            assert last_confirmed <= meta["version"] <= last_confirmed + 1
            version = meta["version"]
            assert set(tensors) == {"big", "small"} and tensors["big"].shape == (ELEMENTS,)
            assert torch.all(tensors["big"] == version) and torch.all(tensors["small"] == 2.0 * version)
            # The JSON sidecar is written second, so it is this version or, killed in between, the one before.
            assert json.loads(path.with_suffix(".json").read_text())["version"] in (version - 1, version)
            # A kill leaves at most hidden temp files behind, never anything named like a checkpoint.
            assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")} == {"ck.safetensors",
                                                                                        "ck.json"}
    finally:
        zygote.stdin.close()
        zygote.kill()
        zygote.wait()
    assert version >= 1
    assert killed_mid_write >= 1, "no kill landed while a temporary checkpoint was being written"
