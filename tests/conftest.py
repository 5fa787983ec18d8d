"""Shared by every suite: no Qt here (core tests never import it)."""

import os

import pytest
import torch

# Loops adapt torch's thread count to the machine's load (core/threads.py), and a count that changes mid-run changes
# floating-point sums; tests compare runs bit for bit, so OMP_NUM_THREADS pins it for the whole session (fixtures of
# any scope, child processes) at the count torch chose, unless the shell set it already.
os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))


@pytest.fixture(scope="session")
def numba_cache(request, tmp_path_factory):
    """A numba cache kept from one test session to the next in pytest's own cache folder, never the user's:
    a test that draws real UMAP maps pays the JIT compile (20-60 s on 2 cores) only the first time. Where
    pytest's cache is turned off (-p no:cacheprovider), a fresh folder (so a cold compile) instead."""
    cache = getattr(request.config, "cache", None)
    return cache.mkdir("numba") if cache is not None else tmp_path_factory.mktemp("numba")


@pytest.fixture
def trash(tmp_path, monkeypatch):
    """The freedesktop trash send2trash moves into, under tmp_path (its files/ folder): send2trash reads
    XDG_DATA_HOME once, when imported, so it reads it again here and once more after the test. HOME goes there too,
    so the trashed folders sit on the home trash's device whatever the machine's mounts. Its own freedesktop code is
    used even where PyGObject is installed (send2trash would then go through GIO, which keeps the user's trash)."""
    import importlib

    from send2trash import plat_other

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    importlib.reload(plat_other)
    monkeypatch.setattr("ssl_studio.core.workspace.send2trash", plat_other.send2trash)
    yield tmp_path / "xdg" / "Trash" / "files"
    monkeypatch.undo()
    importlib.reload(plat_other)
