"""Shared by every suite: no Qt here (core tests never import it)."""

import pytest
import torch

TORCH_THREADS = str(torch.get_num_threads())


@pytest.fixture(autouse=True)
def pinned_torch_threads(monkeypatch):
    """Loops adapt torch's thread count to the machine's load (core/threads.py), and a count that changes mid-run
    changes floating-point sums: tests that compare runs bit for bit need it pinned, as torch first chose it.
    OMP_NUM_THREADS pins it (child processes inherit it)."""
    monkeypatch.setenv("OMP_NUM_THREADS", TORCH_THREADS)


@pytest.fixture(scope="session")
def numba_cache(request, tmp_path_factory):
    """A numba cache kept from one test session to the next in pytest's own cache folder, never the user's:
    a test that draws real UMAP maps pays the JIT compile (20-60 s on 2 cores) only the first time. Where
    pytest's cache is turned off (-p no:cacheprovider), a fresh folder (so a cold compile) instead."""
    cache = getattr(request.config, "cache", None)
    return cache.mkdir("numba") if cache is not None else tmp_path_factory.mktemp("numba")
