"""The workspace: its runs table read from the runs' small files, and runs grouped by everything but the seed."""

import json
import math

import pytest
import torch

from ssl_studio.core import runs
from ssl_studio.core.checkpoint import save_checkpoint
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.runs import RunFolder
from ssl_studio.core.workspace import (WorkspaceError, group_runs, list_runs, short_settings, spread, summarize,
                                       trash_run, verdict)
from workspaces import make_run


@pytest.fixture
def workspace(tmp_path):
    """lr 0.001 at seeds 0-2 (kNN 80, 82, 84 %) against lr 0.002 at seeds 0-2 (kNN 70, 71, 72 %)."""
    for seed, knn, linear in ((0, 0.80, 0.6), (1, 0.82, 0.7), (2, 0.84, 0.8)):
        make_run(tmp_path, f"a{seed}", seed=seed, lr=1e-3, knn=knn, linear=linear,
                 transfer=0.5 if seed == 0 else None)
    for seed, knn in ((0, 0.70), (1, 0.71), (2, 0.72)):
        make_run(tmp_path, f"b{seed}", seed=seed, lr=2e-3, knn=knn, linear=0.5)
    return tmp_path


def test_a_finished_run_lists_its_settings_and_figures(workspace):
    row = {r.name: r for r in list_runs(workspace)}["a0"]
    assert (row.state, row.reason, row.data, row.method, row.backbone) == (
        "finished", None, "/data/shapes", "simclr", "small-cnn", )
    assert (row.recipe, row.budget, row.seed, row.seconds, row.views_per_second) == ("custom", "30 s", 0, 30.5,
                                                                                     812.3)
    assert row.scores == {"ssl": {"knn_top1": 0.80, "linear_top1": 0.6},
                          "pixels": {"knn_top1": 0.3, "linear_top1": 0.25}}
    assert row.transfer_1pct == 0.5 and {r.name: r.transfer_1pct for r in list_runs(workspace)}["a1"] is None
    assert row.date.endswith("Z") and len(row.date) == 20


def test_the_recipe_is_named_when_it_is_a_preset_and_epochs_are_the_budget(tmp_path):
    run = RunFolder.create(tmp_path / "r")
    run.write_settings("/d", 32, TrainConfig(method="vicreg", epochs=3, time_budget=None),
                       runs_recipe("vicreg"), "test")
    (row,) = list_runs(tmp_path)
    assert (row.recipe, row.budget, row.method) == ("vicreg", "3 epochs", "vicreg")


def runs_recipe(method):
    from ssl_studio.core.methods import recipe_presets

    return recipe_presets()[method]


def test_damaged_failed_and_cancelled_runs_are_listed_with_their_reason(workspace):
    (workspace / "bad").mkdir()
    (workspace / "bad" / runs.CONFIG).write_text("{not json")
    (workspace / "headless").mkdir()
    (workspace / "headless" / runs.METRICS).write_text("{}")
    (workspace / "not-a-run").mkdir()  # no run files: not listed
    make_run(workspace, "failed")
    stopped = make_run(workspace, "stopped")
    save_checkpoint(stopped.checkpoint("ssl"), {"w": torch.zeros(1)}, {"step": 7, "finished": False})
    rows = {r.name: r for r in list_runs(workspace)}
    assert "not-a-run" not in rows and len(rows) == 10
    assert rows["bad"].state == "damaged" and runs.CONFIG in rows["bad"].reason and "JSON" in rows["bad"].reason
    assert rows["headless"].state == "damaged" and f"has no {runs.CONFIG}" in rows["headless"].reason
    assert rows["failed"].state == "failed" and "no SSL checkpoint" in rows["failed"].reason
    assert rows["stopped"].state == "cancelled" and "step 7" in rows["stopped"].reason
    assert rows["bad"].method is None and rows["bad"].to_dict()["state"] == "damaged"
    assert [g["runs"] for g in group_runs(list(rows.values()))] == [["a0", "a1", "a2"], ["b0", "b1", "b2"]]


def test_a_missing_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="is not a folder"):
        list_runs(tmp_path / "nowhere")


def test_spread_is_the_sample_standard_deviation():
    assert spread([0.80, 0.82, 0.84]) == pytest.approx({"mean": 0.82, "std": 0.02, "values": [0.80, 0.82, 0.84]})
    assert spread([0.6, 0.7, 0.8])["std"] == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / (3 - 1))
    assert spread([0.5]) == {"mean": 0.5, "std": None, "values": [0.5]}


def test_runs_differing_only_by_seed_group_with_their_spread_into_summary_json(workspace):
    rows, summary = summarize(workspace)
    written = json.loads((workspace / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary))
    best, other = written["groups"]
    assert best["settings"] == {"lr": 0.001} and other["settings"] == {"lr": 0.002}
    assert best["runs"] == ["a0", "a1", "a2"] and other["runs"] == ["b0", "b1", "b2"]
    assert best["metrics"]["ssl_knn"]["mean"] == pytest.approx(0.82)
    assert best["metrics"]["ssl_knn"]["std"] == pytest.approx(0.02)
    assert best["metrics"]["ssl_knn"]["values"] == [0.80, 0.82, 0.84]
    assert best["metrics"]["ssl_linear"]["mean"] == pytest.approx(0.7)
    assert best["metrics"]["ssl_linear"]["std"] == pytest.approx(0.1)
    assert best["metrics"]["transfer_1pct"] == {"mean": 0.5, "std": None, "values": [0.5]}
    assert "transfer_1pct" not in other["metrics"]
    assert other["metrics"]["ssl_knn"]["mean"] == pytest.approx(0.71)
    assert other["metrics"]["ssl_knn"]["std"] == pytest.approx(0.01)
    # lead 82 - 71 = 11 points, spread 2 + 1 = 3 points
    assert written["verdict"] == ("lr=0.001 leads lr=0.002 by 11.0 points of SSL kNN, more than the seeds' spread "
                                  "(3.0 points) at 3 seeds.")


def test_summary_json_is_written_only_when_the_groups_change(workspace):
    summarize(workspace)
    written = (workspace / "summary.json").stat()
    summarize(workspace)  # the same runs: the same file, not written again (a new file would have a new inode)
    assert (workspace / "summary.json").stat().st_ino == written.st_ino
    make_run(workspace, "a3", seed=3, lr=1e-3, knn=0.9, linear=0.9)
    _, summary = summarize(workspace)
    assert (workspace / "summary.json").stat().st_ino != written.st_ino
    assert json.loads((workspace / "summary.json").read_text())["groups"][0]["runs"] == ["a0", "a1", "a2", "a3"]


def test_a_lead_within_the_seeds_spread_shows_no_difference(tmp_path):
    for seed, knn in enumerate((0.80, 0.82, 0.84)):
        make_run(tmp_path, f"a{seed}", seed=seed, lr=1e-3, knn=knn, linear=0.5)
    for seed, knn in enumerate((0.78, 0.80, 0.82)):
        make_run(tmp_path, f"b{seed}", seed=seed, lr=2e-3, knn=knn, linear=0.5)
    groups = group_runs(list_runs(tmp_path))
    # lead 82 - 80 = 2 points, spread 2 + 2 = 4 points
    assert verdict(groups) == ("No difference shown at 3 seeds: lr=0.001 leads lr=0.002 by 2.0 points of SSL kNN, "
                               "within the seeds' spread (4.0 points).")


def test_one_seed_or_one_group_shows_no_difference(tmp_path):
    make_run(tmp_path, "a", lr=1e-3, knn=0.9, linear=0.5)
    assert verdict(group_runs(list_runs(tmp_path))).startswith("Fewer than two groups")
    make_run(tmp_path, "b", lr=2e-3, knn=0.5, linear=0.5)
    groups = group_runs(list_runs(tmp_path))
    assert [g["metrics"]["ssl_knn"]["std"] for g in groups] == [None, None]
    assert verdict(groups).startswith("No difference shown at 1 seed: lr=0.001 leads lr=0.002 by 40.0 points")
    assert not math.isnan(groups[0]["metrics"]["ssl_knn"]["mean"])


def test_the_runs_command_prints_the_table_groups_and_verdict(workspace, capsys):
    from ssl_studio.cli import main

    (workspace / "bad").mkdir()
    (workspace / "bad" / runs.CONFIG).write_text("[]")
    assert main(["runs", str(workspace)]) == 0
    out = capsys.readouterr().out
    header, a0 = out.splitlines()[1:3]
    assert header.split()[:3] == ["run", "state", "method"] and header.index("ssl kNN/lin") < header.index("pixels")
    assert a0.split() == ["a0", "finished", "simclr", "small-cnn", "custom", "30", "s", "0", a0.split()[8], "30.5",
                          "812.3", "80.0%/60.0%", "30.0%/25.0%", "50.0%"]
    assert f"bad: {runs.CONFIG} in {workspace / 'bad'} must hold a JSON object" in out
    assert "  ssl_knn        82.0% ± 2.0%  (80.0%, 82.0%, 84.0%)" in out
    assert out.rstrip().endswith("more than the seeds' spread (3.0 points) at 3 seeds.")
    assert main(["runs", str(workspace), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in printed["runs"]] == ["finished"] * 3 + ["finished"] * 3 + ["damaged"]
    assert printed["groups"] == json.loads((workspace / "summary.json").read_text())["groups"]
    assert main(["runs", str(workspace / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_run_the_pipeline_made_lists_with_its_own_figures(finished_runs, tmp_path):
    import shutil

    from ssl_studio.core.pipeline import open_run

    data, run_dir = finished_runs[0]["labeled"]
    shutil.copytree(run_dir, tmp_path / "labeled")
    loaded = open_run(run_dir)
    (row,) = list_runs(tmp_path)
    assert (row.state, row.data, row.method, row.seed) == ("finished", str(data), loaded.config.method,
                                                          loaded.config.seed)
    assert row.budget == "1 epoch" and row.recipe == loaded.config.method  # the method's own recipe
    assert row.scores["ssl"] == {k: loaded.metrics["embeddings"]["ssl"][k] for k in ("knn_top1", "linear_top1")}
    assert row.seconds == loaded.metrics["train"]["ssl"]["seconds"]
    assert row.views_per_second == loaded.metrics["train"]["ssl"]["views_per_second"]


def test_a_note_round_trips_through_the_run_folder_and_a_damaged_run_keeps_its_own(workspace):
    RunFolder(workspace / "a1").write_note("lr too high?\nsecond line, é")
    (workspace / "bad").mkdir()
    (workspace / "bad" / runs.CONFIG).write_text("{not json")
    RunFolder(workspace / "bad").write_note("broken on purpose")
    rows = {r.name: r for r in list_runs(workspace)}
    assert rows["a1"].note == "lr too high?\nsecond line, é" and rows["a0"].note == ""
    assert (rows["bad"].state, rows["bad"].note) == ("damaged", "broken on purpose")
    assert rows["a1"].to_dict()["note"] == rows["a1"].note  # in `ssl-studio runs --json`
    (workspace / "a2" / runs.NOTE).write_bytes(b"\xff\xfe not text")
    row = {r.name: r for r in list_runs(workspace)}["a2"]
    assert row.state == "damaged" and runs.NOTE in row.reason


def test_deleting_a_run_moves_its_folder_to_the_trash_and_nothing_else(workspace, trash):
    (workspace / "notes").mkdir()
    (workspace / "notes" / "todo.txt").write_text("keep me")
    assert trash_run(workspace, "b1") == workspace / "b1"
    assert not (workspace / "b1").exists() and (trash / "b1" / runs.CONFIG).is_file()
    assert [r.name for r in list_runs(workspace)] == ["a0", "a1", "a2", "b0", "b2"]
    for name in ("notes", "missing", "..", "../" + workspace.name + "/a0", ""):
        with pytest.raises(WorkspaceError, match="is not a run folder of the workspace"):
            trash_run(workspace, name)
    assert (workspace / "notes" / "todo.txt").read_text() == "keep me" and (workspace / "a0").is_dir()
    assert sorted(p.name for p in trash.iterdir()) == ["b1"]


def test_a_group_is_named_in_few_words_and_summary_json_keeps_every_setting(tmp_path):
    """Methods with their own recipes: the method says it all; a preset recipe of another method is named."""
    for method in ("simclr", "vicreg"):
        run = RunFolder.create(tmp_path / method)
        run.write_settings("/d", 32, TrainConfig(method=method), runs_recipe(method), "test")
        run.write_metrics({"embeddings": {"ssl": {"knn_top1": 0.5 if method == "simclr" else 0.6}}})
    run = RunFolder.create(tmp_path / "rotation-recipe")
    run.write_settings("/d", 32, TrainConfig(method="vicreg"), runs_recipe("rotation"), "test")
    run.write_metrics({"embeddings": {"ssl": {"knn_top1": 0.4}}})
    groups = group_runs(list_runs(tmp_path))
    assert [short_settings(g) for g in groups] == [{"method": "vicreg"}, {"method": "simclr"},
                                                   {"method": "vicreg", "recipe": "rotation"}]
    assert "params.temperature" in groups[1]["settings"] and "recipe.crop_scale" in groups[0]["settings"]
    assert verdict(groups).startswith("No difference shown at 1 seed: method=vicreg leads method=simclr by 10.0")
