import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every core test gets its own cache root, so none reads or writes the user's real cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("SSL_STUDIO_CACHE_DIR", str(root))
    return root
