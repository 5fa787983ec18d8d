"""`ssl-studio export RUN_DIR --format projector|fiftyone|csv OUT`, end to end on the tiny finished runs."""

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from ssl_studio.cli import main
from ssl_studio.core.cancel import CancelToken, Cancelled
from ssl_studio.core.data import load_folder
from ssl_studio.core.pipeline import open_run
from ssl_studio.core.projector_export import CONFIG
from ssl_studio.core.run_export import ExportProgress, export_run


def test_projector_export_has_every_space_the_images_classes_and_split(finished_runs, tmp_path, capsys):
    runs, _ = finished_runs
    data, run_dir = runs["labeled"]
    out = tmp_path / "projector"
    assert main(["export", str(run_dir), "--format", "projector", str(out)]) == 0
    assert f"tensorboard --logdir {out}" in capsys.readouterr().err
    loaded = open_run(run_dir)
    n = len(loaded.paths)
    text = (out / CONFIG).read_text()
    assert text.count("embeddings {") == len(loaded.embeddings) == 4
    for space, x in loaded.embeddings.items():
        rows = (out / space / "tensors.tsv").read_text().splitlines()
        assert len(rows) == n and np.allclose([float(v) for v in rows[0].split("\t")], x[0], atol=1e-4)
    meta = [line.split("\t") for line in (out / "metadata.tsv").read_text().splitlines()]
    assert meta[0] == ["path", "class", "split"] and [m[0] for m in meta[1:]] == loaded.paths
    assert [m[1] for m in meta[1:]] == [loaded.class_names[k] for k in loaded.labels]
    test = set(json.loads((run_dir / "split.json").read_text())["test"])
    assert [m[2] for m in meta[1:]] == ["test" if i in test else "train" for i in range(n)]
    # The sprite sheet is made of the run's images, read again from its data folder: a square grid, row by row.
    side, cell = int(np.ceil(np.sqrt(n))), loaded.config.resolution
    sheet = np.asarray(Image.open(out / "sprite.png").convert("RGB"))
    assert sheet.shape == (side * cell, side * cell, 3)
    decoded = load_folder(data, cell)
    assert decoded.paths == loaded.paths
    for i in range(n):
        tile = sheet[(i // side) * cell:(i // side + 1) * cell, (i % side) * cell:(i % side + 1) * cell]
        np.testing.assert_array_equal(tile, decoded.images[i].permute(1, 2, 0).numpy(), err_msg=loaded.paths[i])


def test_projector_config_is_read_by_tensorboard(finished_runs, tmp_path):
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2 as projector

    out = tmp_path / "projector"
    assert main(["export", str(finished_runs[0]["labeled"][1]), "--format", "projector", str(out)]) == 0
    config = text_format.Parse((out / CONFIG).read_text(), projector.ProjectorConfig())
    assert [e.tensor_name for e in config.embeddings] == ["ssl", "supervised", "untrained", "pixels"]
    assert all((out / e.tensor_path).is_file() and (out / e.sprite.image_path).is_file() for e in config.embeddings)


def test_fiftyone_export_copies_the_images_with_each_spaces_embeddings_and_map(finished_runs, tmp_path, capsys):
    data, run_dir = finished_runs[0]["labeled"]
    out = tmp_path / "fiftyone"
    assert main(["export", str(run_dir), "--format", "fiftyone", str(out)]) == 0
    assert f"python {out}/load_in_fiftyone.py" in capsys.readouterr().err
    loaded = open_run(run_dir)
    assert all((out / "images" / p).read_bytes() == (data / p).read_bytes() for p in loaded.paths)
    assert (out / "paths.txt").read_text().splitlines() == loaded.paths
    info = json.loads((out / "export.json").read_text())
    assert info == {"name": run_dir.name, "labeled": True, "spaces": list(loaded.embeddings)}
    for space in info["spaces"]:  # this run has PCA maps only: they are the points
        np.testing.assert_array_equal(np.load(out / "embeddings" / f"{space}.npy"), loaded.embeddings[space])
        np.testing.assert_array_equal(np.load(out / "points" / f"{space}.npy"), loaded.projections[(space, "pca")])


def test_fiftyone_points_are_the_umap_map_where_the_run_has_one_beside_pca(finished_runs, tmp_path):
    from ssl_studio.core.runs import RunFolder

    run_dir = tmp_path / "run"
    shutil.copytree(finished_runs[0]["labeled"][1], run_dir)
    run = RunFolder.open(run_dir)
    loaded = open_run(run_dir)
    umap = {}
    for space in loaded.embeddings:  # a UMAP map beside the PCA one, as the project stage names it
        umap[space] = (loaded.projections[(space, "pca")][:, ::-1] * 3 + 1).astype(np.float32)
        run.save_projection(space, "umap", umap[space])
    assert main(["export", str(run_dir), "--format", "fiftyone", str(tmp_path / "out")]) == 0
    for space in loaded.embeddings:
        np.testing.assert_array_equal(np.load(tmp_path / "out" / "points" / f"{space}.npy"), umap[space])


def test_csv_export_of_an_unlabeled_run_names_each_images_cluster(finished_runs, tmp_path):
    _, run_dir = finished_runs[0]["unlabeled"]
    out = tmp_path / "csv"
    assert main(["export", str(run_dir), "--format", "csv", str(out)]) == 0
    loaded = open_run(run_dir)
    with open(out / "embedding_ssl.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert [r[0] for r in rows[1:]] == loaded.paths
    assert [r[1] for r in rows[1:]] == [f"cluster {k + 1}" for k in loaded.clusters]
    np.testing.assert_array_equal(np.load(out / "embedding_pixels.npy"), loaded.embeddings["pixels"])


def test_export_progress_counts_up_to_its_total(finished_runs, tmp_path, drain):
    events, out = drain(export_run(finished_runs[0]["labeled"][1], "csv", tmp_path / "x"))
    progress = [e for e in events if isinstance(e, ExportProgress)]
    assert out == tmp_path / "x" and [(e.done, e.total) for e in progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_cancelled_export_stops(finished_runs, tmp_path):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(export_run(finished_runs[0]["labeled"][1], "fiftyone", tmp_path / "x", cancel=token))


def test_exports_that_cannot_be_made_say_why(finished_runs, tmp_path, capsys):
    _, run_dir = finished_runs[0]["labeled"]
    bare = tmp_path / "bare-run"
    shutil.copytree(run_dir, bare)
    shutil.rmtree(bare / "embeddings")
    assert main(["export", str(bare), "--format", "csv", str(tmp_path / "a")]) == 2
    assert "has no embeddings yet" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--format", "csv", str(tmp_path / "b")]) == 2
    assert "error:" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["export", str(run_dir), "--format", "csv", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown export format 'tsv'"):
        list(export_run(run_dir, "tsv", tmp_path / "c"))
