"""Curation: marks (exclude, relabel), their undo and file, what they make of the folder (a curated list, a CSV, a
tree of links) and a run trained on the curated set; the data folder is only ever read."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ssl_studio.cli import main
from ssl_studio.core.curation import Curation, CurationError, curate, link_tree, write_csv
from ssl_studio.core.data import load_folder
from ssl_studio.core.reopen import open_run_with_images
from ssl_studio.core.runs import RunError, RunFolder
from ssl_studio.core.samples import make_shapes

PATHS = ["cat/a.png", "cat/b.png", "dog/c.png", "dog/d.png", "fox/e.png"]
LABELS = np.array([0, 0, 1, 1, 2])
CLASSES = ["cat", "dog", "fox"]


def marked() -> Curation:
    curation = Curation()
    curation.mark("exclude", ["cat/b.png"])
    curation.mark("relabel", ["dog/c.png", "fox/e.png"], "cat")
    return curation


def folder_hash(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_apply_leaves_out_the_excluded_and_relabels_the_others():
    rows, labels = marked().apply(PATHS, LABELS, CLASSES)
    assert rows.tolist() == [0, 2, 3, 4]
    assert labels.tolist() == [0, 0, 1, 0]
    assert marked().curated_list(PATHS, LABELS, CLASSES) == [
        ("cat/a.png", "cat"), ("dog/c.png", "cat"), ("dog/d.png", "dog"), ("fox/e.png", "cat")]


def test_a_later_mark_wins_and_undo_takes_back_the_last_mark_whole():
    curation = marked()
    curation.mark("exclude", ["dog/c.png"])
    assert curation.curated_list(PATHS, LABELS, CLASSES) == [
        ("cat/a.png", "cat"), ("dog/d.png", "dog"), ("fox/e.png", "cat")]
    assert curation.counts() == (2, 1)
    assert curation.undo().paths == ("dog/c.png",)
    assert curation.undo().paths == ("dog/c.png", "fox/e.png")
    assert curation.apply(PATHS, LABELS, CLASSES)[1].tolist() == [0, 1, 1, 2]
    assert curation.undo().action == "exclude" and curation.undo() is None
    assert curation.apply(PATHS, LABELS, CLASSES)[0].tolist() == [0, 1, 2, 3, 4]


def test_marks_round_trip_through_the_run_folder(tmp_path):
    run = RunFolder.create(tmp_path / "run")
    assert run.read_curation().marks == []
    run.write_curation(marked())
    back = run.read_curation()
    assert back.marks == marked().marks and back.source == str(run.curation_path)
    assert json.loads(run.curation_path.read_text())["marks"][1] == {
        "action": "relabel", "paths": ["dog/c.png", "fox/e.png"], "label": "cat"}


@pytest.mark.parametrize("marks, words", [
    ({"marks": [{"action": "delete", "paths": ["a.png"]}]}, "exclude or relabel"),
    ({"marks": [{"action": "relabel", "paths": ["a.png"]}]}, "needs its new class"),
    ({"marks": [{"action": "exclude", "paths": []}]}, "one or more image paths"),
    ({"marks": "all"}, "list of marks"),
])
def test_a_tampered_curation_file_is_refused_saying_why(tmp_path, marks, words):
    run = RunFolder.create(tmp_path / "run")
    run.curation_path.write_text(json.dumps(marks))
    with pytest.raises(RunError, match=words):
        run.read_curation()
    with pytest.raises(CurationError, match=words):
        Curation.read(run.curation_path)


def test_marks_on_files_no_longer_there_are_refused_naming_them():
    curation = marked()
    with pytest.raises(CurationError, match=r"2 marked image\(s\) are no longer in the data folder: cat/b.png, "
                                            r"fox/e.png"):
        curation.apply(["cat/a.png", "dog/c.png", "dog/d.png"], LABELS[[0, 2, 3]], CLASSES)


def test_relabel_to_a_class_that_does_not_exist_is_refused_naming_the_classes():
    curation = Curation()
    curation.mark("relabel", ["cat/a.png"], "wolf")
    with pytest.raises(CurationError, match="there is no class wolf; the classes are cat, dog, fox"):
        curation.apply(PATHS, LABELS, CLASSES)
    with pytest.raises(CurationError, match="no classes"):
        curation.apply(["cat/a.png"], None, [])


def test_csv_lists_each_marked_image_latest_mark(tmp_path):
    curation = marked()
    curation.mark("exclude", ["fox/e.png"])
    write_csv(tmp_path / "marks.csv", curation)
    assert (tmp_path / "marks.csv").read_bytes().decode() == ("path,action,new_label\r\n"
                                                    "cat/b.png,exclude,\r\n"
                                                    "dog/c.png,relabel,cat\r\n"
                                                    "fox/e.png,exclude,\r\n")


def test_link_tree_holds_the_curated_images_in_their_new_classes_and_the_data_folder_is_untouched(tmp_path):
    data = make_shapes(tmp_path / "data", per_class=2, size=12, seed=0)
    before = folder_hash(data)
    paths = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    classes = sorted({p.split("/")[0] for p in paths})
    labels = np.array([classes.index(p.split("/")[0]) for p in paths])
    curation = Curation()
    curation.mark("exclude", [paths[0]])
    curation.mark("relabel", [paths[2]], classes[0])
    copied = link_tree(tmp_path / "tree", data, curation.curated_list(paths, labels, classes))
    assert copied == 0
    tree = sorted(str(p.relative_to(tmp_path / "tree")) for p in (tmp_path / "tree").rglob("*.png"))
    moved = f"{classes[0]}/{paths[2].split('/')[1]}"
    assert tree == sorted([moved] + paths[1:2] + paths[3:])
    assert os.stat(tmp_path / "tree" / moved).st_ino == os.stat(data / paths[2]).st_ino
    assert (tmp_path / "tree" / paths[1]).read_bytes() == (data / paths[1]).read_bytes()
    with pytest.raises(FileExistsError, match="already holds"):
        link_tree(tmp_path / "tree", data, curation.curated_list(paths, labels, classes))
    assert folder_hash(data) == before


def test_link_tree_copies_where_no_link_can_be_made_and_keeps_a_name_taken_twice(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for path in ("cat/x.png", "dog/x.png"):
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        (data / path).write_bytes(path.encode())
    monkeypatch.setattr(os, "link", lambda *_: (_ for _ in ()).throw(OSError(18, "Invalid cross-device link")))
    copied = link_tree(tmp_path / "tree", data, [("cat/x.png", "dog"), ("dog/x.png", "dog")])
    assert copied == 2
    assert (tmp_path / "tree/dog/x.png").read_bytes() == b"cat/x.png"
    assert (tmp_path / "tree/dog/x_from_dog.png").read_bytes() == b"dog/x.png"


def test_link_tree_names_the_files_gone_from_the_data_folder(tmp_path):
    (tmp_path / "data/cat").mkdir(parents=True)
    with pytest.raises(CurationError, match="1 image\\(s\\) are no longer in the data folder .*cat/gone.png"):
        link_tree(tmp_path / "tree", tmp_path / "data", [("cat/gone.png", "cat")])
    assert not (tmp_path / "tree").exists()


def test_curate_gives_the_dataset_without_the_excluded_images(tmp_path):
    data = make_shapes(tmp_path / "data", per_class=2, size=12, seed=0)
    dataset = load_folder(data, resolution=8)
    curation = Curation()
    curation.mark("exclude", dataset.paths[:2])
    curation.mark("relabel", [dataset.paths[-1]], dataset.class_names[0])
    curated = curate(dataset, curation)
    assert curated.paths == dataset.paths[2:]
    assert curated.labels.tolist() == dataset.labels[2:-1].tolist() + [0]
    assert (curated.images.numpy() == dataset.images[2:].numpy()).all()


def test_a_curated_set_marked_again_is_curated_from_its_whole_folder(tmp_path):
    data = make_shapes(tmp_path / "data", per_class=2, size=12, seed=0)
    dataset = load_folder(data, resolution=8)
    first = Curation()
    first.mark("exclude", dataset.paths[:2])
    again = Curation(source="run2/marks.json")
    again.mark("exclude", [dataset.paths[2]])
    both = again.after(first)
    assert both.marks == first.marks + again.marks and both.source == "run2/marks.json"
    twice = curate(curate(dataset, first), both)
    assert twice.paths == dataset.paths[3:] and twice.folder is dataset


def test_cli_run_trains_on_the_curated_set_and_records_it(tmp_path, drain):
    data = make_shapes(tmp_path / "data", per_class=4, size=16, seed=1)
    before = folder_hash(data)
    paths = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    classes = sorted({p.split("/")[0] for p in paths})
    curation = Curation()
    curation.mark("exclude", paths[:3])
    curation.mark("relabel", [paths[-1]], classes[0])
    (tmp_path / "marks.json").write_text(json.dumps(curation.to_json()))
    out = tmp_path / "run"
    assert main(["run", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "8", "--resolution", "16",
                 "--no-umap", "--no-transfer", "--curation", str(tmp_path / "marks.json")]) == 0
    run = RunFolder.open(out)
    index = run.read_dataset()
    assert index.paths == paths[3:]
    assert index.labels.tolist()[-1] == 0 and classes[index.labels[-2]] == paths[-2].split("/")[0]
    assert len(run.load_array(run.embedding_name("ssl"))) == len(paths) - 3
    recorded = run.read_settings().curation
    assert recorded["file"] == str((tmp_path / "marks.json").resolve())
    assert recorded["marks"] == curation.to_json()["marks"]
    assert folder_hash(data) == before
    reopened = drain(open_run_with_images(out))[1]  # read again, the folder is curated as the run was
    assert reopened.dataset.paths == paths[3:] and reopened.dataset.labels.tolist() == index.labels.tolist()


def test_cli_run_refuses_a_curation_naming_files_not_in_the_folder(tmp_path, capsys):
    data = make_shapes(tmp_path / "data", per_class=2, size=12, seed=1)
    (tmp_path / "marks.json").write_text(json.dumps({"marks": [{"action": "exclude", "paths": ["gone/x.png"]}]}))
    assert main(["run", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--curation", str(tmp_path / "marks.json")]) == 2
    assert "no longer in the data folder: gone/x.png" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
