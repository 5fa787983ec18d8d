"""Label these next, headless: `ssl-studio select` on a labeled and an unlabeled run, its CSV and folder of links,
and the bad input it refuses."""

import csv
import json
import os

import numpy as np
import pytest

from ssl_studio.cli import main
from ssl_studio.core.label_next import link_folder, pick_from_run
from ssl_studio.core.label_selection import select_images


def rows_of(path):
    return list(csv.DictReader(open(path, encoding="utf-8")))


def test_select_writes_the_typical_picks_of_the_training_split_and_links_them(finished_runs, tmp_path):
    data, run = finished_runs[0]["labeled"]
    out, links = tmp_path / "next.csv", tmp_path / "to-label"
    assert main(["select", str(run), "--budget", "5", "--out", str(out), "--links", str(links)]) == 0
    split = json.loads((run / "split.json").read_text())
    paths = json.loads((run / "dataset.json").read_text())["paths"]
    expected = select_images(np.load(run / "embeddings" / "ssl.npy"), split["train"], 5, "typical", seed=0)
    rows = rows_of(out)
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r["path"] for r in rows] == [str(data / paths[i]) for i in expected]
    assert not set(expected) & set(split["test"])  # the held-out images stay unlabeled
    linked = sorted(links.iterdir())
    assert [p.name for p in linked] == [f"{rank:04d}_{os.path.basename(r['path'])}" for rank, r in
                                        enumerate(rows, 1)]
    for file, row in zip(linked, rows):
        assert os.path.samefile(file, row["path"])  # a hard link: no copy on one file system


def test_an_unlabeled_run_chooses_among_all_its_images(finished_runs, tmp_path):
    _, run = finished_runs[0]["unlabeled"]
    picks = pick_from_run(run, 24, "coverage")
    assert sorted(picks.indices.tolist()) == list(range(24)) and picks.strategy == "coverage"
    with pytest.raises(ValueError, match="a budget of 25 images is more than the 24 images of the folder"):
        pick_from_run(run, 25)


def test_a_folder_of_links_copies_where_a_link_fails_and_replaces_nothing(finished_runs, tmp_path, monkeypatch):
    files = pick_from_run(finished_runs[0]["labeled"][1], 3, "random").files

    def no_links(*_):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)  # atomic.link_or_copy links
    assert link_folder(tmp_path / "copies", files) == 3
    copies = sorted((tmp_path / "copies").iterdir())
    assert [c.read_bytes() for c in copies] == [f.read_bytes() for f in files]
    assert not any(os.path.samefile(c, f) for c, f in zip(copies, files))
    with pytest.raises(FileExistsError, match=f"already holds {copies[0].name} and 2 more"):
        link_folder(tmp_path / "copies", files)


@pytest.mark.parametrize("flags, message", [
    (["--budget", "0"], "a budget of 0 images selects nothing: give at least 1"),
    (["--budget", "27"], "a budget of 27 images is more than the 26 images of the training split"),
    (["--budget", "3", "--space", "clip"],
     "this run has no 'clip' space; it has 'ssl', 'supervised', 'untrained', 'pixels'"),
])
def test_select_refuses_bad_input_saying_why(finished_runs, tmp_path, capsys, flags, message):
    _, run = finished_runs[0]["labeled"]
    assert len(json.loads((run / "split.json").read_text())["train"]) == 26  # 8 classes of 4, less 6 held out
    assert main(["select", str(run), *flags, "--out", str(tmp_path / "next.csv")]) == 2
    assert capsys.readouterr().err.strip() == f"ssl-studio: error: {message}"
    assert not (tmp_path / "next.csv").exists()
