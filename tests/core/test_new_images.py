"""New images embedded with a finished run: `ssl-studio embed` and the Python API (ssl_studio.open_run)."""

import csv
import shutil
import subprocess
import sys

import numpy as np
import pytest

import ssl_studio
from ssl_studio.cli import main
from ssl_studio.core.checkpoint import save_checkpoint
from ssl_studio.core.models import build_backbone
from ssl_studio.core.spaces import SPACES


def _rows(csv_path):
    with open(csv_path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("kind", ["labeled", "unlabeled"])
def test_embedding_the_runs_own_folder_gives_back_its_embeddings_row_for_row(finished_runs, tmp_path, kind,
                                                                             capsys):
    data, run_dir = finished_runs[0][kind]
    run = ssl_studio.open_run(run_dir)
    for space in [s for s in SPACES if (run_dir / "embeddings" / f"{s}.npy").exists()]:
        out = tmp_path / f"{space}.npy"
        assert main(["embed", str(run_dir), str(data), "--out", str(out), "--space", space, "--device", "cpu"]) == 0
        stored = np.load(run_dir / "embeddings" / f"{space}.npy")
        np.testing.assert_allclose(np.load(out), stored, rtol=1e-5, atol=1e-6)
        rows = _rows(out.with_suffix(".csv"))
        assert rows[0] == ["path", "label"]
        assert [r[0] for r in rows[1:]] == run.paths
        if kind == "labeled":
            assert [r[1] for r in rows[1:]] == [p.split("/")[0] for p in run.paths]
    assert f"done: {len(run.paths)} images embedded in the {space} space" in capsys.readouterr().err


def test_the_api_embeds_files_and_arrays_and_reads_the_runs_figures(finished_runs):
    data, run_dir = finished_runs[0]["labeled"]
    run = ssl_studio.open_run(run_dir)
    stored = np.load(run_dir / "embeddings" / "ssl.npy")
    picks = [0, 5, 17]
    x = run.embed([data / run.paths[i] for i in picks], space="ssl", device="cpu")
    np.testing.assert_allclose(x, stored[picks], rtol=1e-5, atol=1e-6)
    # uint8 images in, the same rows out; the pixel space is the 16 x 16 downsample of the images in [0, 1]
    flat = np.full((1, 3, run.resolution, run.resolution), 255, np.uint8)
    np.testing.assert_allclose(run.embed(flat, space="pixels"), np.ones((1, 3 * 16 * 16)), atol=1e-6)
    assert run.metrics["embeddings"]["ssl"] == run.loaded.metrics["embeddings"]["ssl"]
    assert run.metrics["dataset"]["images"] == len(run.paths) == 32 and run.transfer == {}
    np.testing.assert_array_equal(run.embeddings("ssl"), stored)
    folder = run.embed_folder(data, space="untrained", device="cpu")
    np.testing.assert_allclose(folder.features, np.load(run_dir / "embeddings" / "untrained.npy"),
                               rtol=1e-5, atol=1e-6)


def test_skipped_files_are_listed_with_reasons_and_left_out_of_the_rows(finished_runs, tmp_path, capsys):
    data, run_dir = finished_runs[0]["unlabeled"]
    folder = tmp_path / "new"
    folder.mkdir()
    for png in sorted(data.glob("*.png"))[:3]:
        shutil.copy(png, folder / png.name)
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "new.npy"
    assert main(["embed", str(run_dir), str(folder), "--out", str(out)]) == 0
    assert np.load(out).shape == (3, 256)
    assert [r[0] for r in _rows(tmp_path / "new.csv")[1:]] == ["00.png", "01.png", "02.png"]
    err = capsys.readouterr().err
    assert "skipped 1 file(s):" in err and "broken.png: not an image" in err


def test_bad_input_is_refused_naming_the_file_and_nothing_is_written(finished_runs, tmp_path, capsys):
    data, original = finished_runs[0]["labeled"]
    out = tmp_path / "out" / "x.npy"

    def refused(run_dir, folder, *flags):
        assert main(["embed", str(run_dir), str(folder), "--out", str(out), *flags]) == 2
        assert not out.parent.exists() or not any(out.parent.iterdir())
        return capsys.readouterr().err

    untrained_run = tmp_path / "no-ssl"
    shutil.copytree(original, untrained_run)
    (untrained_run / "ssl.safetensors").unlink()
    assert "ssl.safetensors is missing" in refused(untrained_run, data)

    other_backbone = tmp_path / "other-backbone"
    shutil.copytree(original, other_backbone)
    resnet = build_backbone("resnet18").state_dict()
    save_checkpoint(other_backbone / "ssl.safetensors", {f"model.backbone.{k}": v for k, v in resnet.items()},
                    {"step": 1, "elapsed": 1.0, "finished": True, "history": []})
    err = refused(other_backbone, data)
    assert f"weights in {other_backbone / 'ssl.safetensors'} do not fit" in err

    (other_backbone / "ssl.safetensors").write_bytes(b"not safetensors")
    assert "ssl.safetensors is not a readable safetensors checkpoint" in refused(other_backbone, data)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.png").write_bytes(b"")
    err = refused(original, empty)
    assert f"None of the 1 image files in {empty} could be read" in err


def test_import_ssl_studio_stays_cheap_until_the_api_is_used():
    code = ("import sys, ssl_studio; print('torch' in sys.modules); ssl_studio.open_run; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]
