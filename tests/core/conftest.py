import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every core test gets its own cache root, so none reads or writes the user's real cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("SSL_STUDIO_CACHE_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory):
    """Tiny finished runs made by the pipeline, {"labeled": (data, run), "unlabeled": (data, run)}, and the
    ClustersReady events the unlabeled one yielded; tests that change one work on a copy."""
    import shutil

    from ssl_studio.core.config import TrainConfig
    from ssl_studio.core.pipeline import run_pipeline
    from ssl_studio.core.samples import make_shapes

    base = tmp_path_factory.mktemp("runs")
    labeled = make_shapes(base / "labeled", per_class=4, size=20, seed=2)
    flat = base / "unlabeled"
    flat.mkdir()
    for i, png in enumerate(sorted(labeled.glob("*/*.png"))[:24]):
        shutil.copy(png, flat / f"{i:02d}.png")
    config = TrainConfig(epochs=1, time_budget=None, batch_size=16, resolution=16, device="cpu")
    runs, events = {}, {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_STUDIO_CACHE_DIR", str(base / "cache"))
        for name, data in (("labeled", labeled), ("unlabeled", flat)):
            events[name] = list(run_pipeline(data, base / f"{name}-run", config, use_umap=False,
                                             skip=("transfer",)))
            runs[name] = (data, base / f"{name}-run")
    return runs, events


@pytest.fixture
def drain():
    """Run a generator to its end: (what it yielded, what it returned)."""
    def run(gen):
        yielded = []
        try:
            while True:
                yielded.append(next(gen))
        except StopIteration as stop:
            return yielded, stop.value

    return run
