"""A whole command line run opens no network connection, in any of its processes: the command itself, the UMAP
worker it starts (UMAP is on here: that process only exists then) and multiprocessing's helper.

Two witnesses watch a real `ssl-studio inspect` and `ssl-studio run`: an audit hook that every Python process of
the run loads as it starts (socket_audit/sitecustomize.py, inherited through PYTHONPATH), which records and
refuses any socket; and, where strace may trace, the kernel's record of the socket system calls of the whole
process tree, which also sees a socket that native code would open behind Python's back.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from reliability_corpus import HERE, ROOT, build_labeled, cli_env

AUDIT = HERE / "socket_audit"
RUN = ["--epochs", "1", "--batch-size", "8", "--resolution", "16", "--device", "cpu",  # UMAP stays on
       "--transfer-fractions", "0.5,1", "--finetune-epochs", "1"]


def strace_prefix(log: Path) -> list[str]:
    """strace following every child and tracing socket system calls only; [] where strace is missing or may not
    trace (containers often forbid ptrace)."""
    if shutil.which("strace") is None:
        return []
    command = ["strace", "-f", "-qq", "-e", "trace=%network", "-o"]
    if subprocess.run([*command, os.devnull, "true"], capture_output=True).returncode:
        return []
    return [*command, str(log)]


def watched(args: list[str], folder: Path, **env) -> dict:
    """Run ``python ARGS`` and its children under both witnesses. ``audit``: (kind, pid, detail) per logged event;
    ``strace``: the traced socket calls, or None without strace."""
    audit_log, strace_log = folder / "sockets.log", folder / "strace.log"
    strace = strace_prefix(strace_log)
    env = {**cli_env(), "SSL_STUDIO_SOCKET_LOG": str(audit_log), **env}
    env["PYTHONPATH"] = os.pathsep.join([str(AUDIT), env["PYTHONPATH"]])
    # A cold numba cache makes UMAP's first fit compile for up to a minute: the timeout allows for a busy machine.
    done = subprocess.run([*strace, sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          errors="backslashreplace", timeout=600)
    return {"code": done.returncode, "err": done.stderr,
            "audit": [tuple(line.split("\t", 2)) for line in audit_log.read_text("utf-8").splitlines()],
            "strace": [line for line in strace_log.read_text().splitlines() if "AF_" in line] if strace else None}


def network_calls(strace_lines: list[str]) -> list[str]:
    # Local sockets are not the network: glibc asks the name-service cache daemon (nscd) for user names over one.
    return [line for line in strace_lines if "AF_UNIX" not in line]


SOCKETS_EVERYWHERE = textwrap.dedent("""
    import ctypes, multiprocessing, socket
    if __name__ == "__main__":
        child = multiprocessing.get_context("spawn").Process(target=socket.create_connection,
                                                             args=(("127.0.0.1", 9),))
        child.start()
        child.join()
        ctypes.CDLL(None).socket(socket.AF_INET, socket.SOCK_STREAM, 0)  # native code: no audit event
""")


def test_the_witnesses_see_sockets_in_children_and_in_native_code(tmp_path):
    seen = watched(["-c", SOCKETS_EVERYWHERE], tmp_path)
    sockets = [(pid, detail) for kind, pid, detail in seen["audit"] if kind == "socket"]
    spawned = {pid for kind, pid, detail in seen["audit"] if kind == "start" and "spawn_main" in detail}
    assert sockets and {pid for pid, _ in sockets} == spawned, seen["audit"]  # seen (and refused) in the child
    assert "socket.getaddrinfo" in sockets[0][1] and "PermissionError" in seen["err"]
    if seen["strace"] is not None:
        assert any("socket(AF_INET, SOCK_STREAM" in line for line in network_calls(seen["strace"]))


@pytest.fixture(scope="module")
def watched_run(tmp_path_factory, numba_cache):
    base = tmp_path_factory.mktemp("watched")
    data = build_labeled(base / "data")
    env = {"SSL_STUDIO_CACHE_DIR": str(base / "cache"), "NUMBA_CACHE_DIR": str(numba_cache), "OMP_NUM_THREADS": "1"}
    inspect = watched(["-m", "ssl_studio", "inspect", str(data)], tmp_path_factory.mktemp("inspect"), **env)
    run = watched(["-m", "ssl_studio", "run", str(data), "--out", str(base / "run"), *RUN],
                  tmp_path_factory.mktemp("run"), **env)
    return {"inspect": inspect, "run": run, "folder": base / "run"}


def test_the_run_made_its_umap_maps_in_a_watched_child_process(watched_run):
    for command in ("inspect", "run"):
        assert watched_run[command]["code"] == 0, watched_run[command]["err"]
    folder = watched_run["folder"]
    assert '"projection": "umap"' in (folder / "metrics.json").read_text()
    for space in ("ssl", "supervised", "untrained", "pixels"):
        assert np.load(folder / "projections" / f"{space}_umap.npy", allow_pickle=False).shape == (16, 2)
    audit = watched_run["run"]["audit"]
    command = {pid for kind, pid, detail in audit if kind == "start" and "'ssl_studio'" in detail}
    workers = {pid for kind, pid, detail in audit if kind == "start" and "spawn_main" in detail}
    imported_umap = {pid for kind, pid, _ in audit if kind == "import"}
    assert len(command) == 1 and imported_umap and imported_umap <= workers, audit


@pytest.mark.parametrize("command", ["inspect", "run"])
def test_no_python_process_makes_a_socket(watched_run, command):
    assert [(pid, detail) for kind, pid, detail in watched_run[command]["audit"] if kind == "socket"] == []


@pytest.mark.parametrize("command", ["inspect", "run"])
def test_no_process_opens_a_network_socket_says_the_kernel(watched_run, command):
    if watched_run[command]["strace"] is None:
        pytest.skip("strace is missing or may not trace here: only the audit hook watched (Python's sockets)")
    assert network_calls(watched_run[command]["strace"]) == []
