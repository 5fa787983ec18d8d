"""File > Export's arrays: NPY and CSV per space, written atomically, readable by other tools."""

import csv

import numpy as np
import pytest

from ssl_studio.core.cancel import CancelToken, Cancelled
from ssl_studio.core.export import save_csv, write_embeddings

PATHS = ["a/1.png", "a/2.png", "b/caf\udce9.png"]  # the last name is not valid UTF-8 (surrogate-escaped)
NAMES = ["a", "a", "b"]


def test_each_space_is_written_as_npy_and_csv(tmp_path, drain):
    embeddings = {"ssl": np.arange(6, dtype=np.float32).reshape(3, 2) / 7,
                  "pixels": np.ones((3, 4), dtype=np.float32)}
    spaces, written = drain(write_embeddings(tmp_path, embeddings, PATHS, NAMES))
    assert spaces == ["ssl", "pixels"]
    assert sorted(p.name for p in written) == ["embedding_pixels.csv", "embedding_pixels.npy",
                                               "embedding_ssl.csv", "embedding_ssl.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)  # no temp files left
    for space, x in embeddings.items():
        assert np.array_equal(np.load(tmp_path / f"embedding_{space}.npy", allow_pickle=False), x)
        with open(tmp_path / f"embedding_{space}.csv", newline="", encoding="utf-8", errors="surrogateescape") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["path", "label"] + [f"e{j}" for j in range(x.shape[1])]
        assert [row[:2] for row in rows[1:]] == [list(pair) for pair in zip(PATHS, NAMES)]
        assert np.allclose(np.array([row[2:] for row in rows[1:]], dtype=np.float32), x, rtol=1e-5)
    # The odd file name goes back to disk as its original bytes.
    assert b"caf\xe9.png" in (tmp_path / "embedding_ssl.csv").read_bytes()


def test_a_cancelled_export_stops_between_spaces(tmp_path):
    token = CancelToken()
    gen = write_embeddings(tmp_path, {"ssl": np.zeros((3, 2)), "pixels": np.zeros((3, 2))}, PATHS, NAMES,
                           cancel=token)
    assert next(gen) == "ssl"
    token.cancel()
    with pytest.raises(Cancelled):
        next(gen)
    assert not (tmp_path / "embedding_pixels.npy").exists()


def test_rows_that_do_not_match_are_refused_and_nothing_is_left(tmp_path, drain):
    with pytest.raises(ValueError, match="do not match"):
        drain(write_embeddings(tmp_path, {"ssl": np.zeros((2, 2))}, PATHS, NAMES))
    assert [p.name for p in tmp_path.iterdir()] == ["embedding_ssl.npy"]  # the CSV's temp file is gone
    with pytest.raises(ValueError):
        save_csv(tmp_path / "x.csv", np.zeros((3, 2)), PATHS, NAMES[:2])
