"""`ssl-studio sweep`: the printed commands parse back to each run's settings; a tiny sweep end to end."""

import json
import shlex

import pytest

from ssl_studio import cli
from ssl_studio.core.folder_defaults import FolderFacts, choose
from ssl_studio.core.methods import default_recipe
from ssl_studio.core.samples import make_shapes
from ssl_studio.core.sweep import QUEUE, Queue, expand
from ssl_studio.core.transfer import TransferConfig
from ssl_studio.core.workspace import SUMMARY
from test_folder_defaults import grey_copy

TINY = ["--epochs", "1", "--batch-size", "16", "--resolution", "16", "--device", "cpu", "--no-umap"]


def test_printed_commands_parse_back_to_the_same_settings(tmp_path, capsys):
    argv = ["sweep", str(tmp_path / "data"), "--out", str(tmp_path / "ws"), "--methods", "simclr,moco",
            "--vary", "temperature=0.2,0.123456", "--vary", "crop_scale=0.3:1,0.6:0.9", "--seeds", "2", "--seed", "7",
            "--time-budget", "30", "--lr", "0.0031415", "--flip-p", "0.25", "--transfer-fractions", "0.1,1",
            "--finetune-epochs", "2", "--no-umap"]
    assert cli.main(argv + ["--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    planned = expand(cli.sweep_from_args(cli._parser().parse_args(argv)))
    assert len(lines) == len(planned) == 16
    for line, run in zip(lines, planned):
        words = shlex.split(line)
        assert words[:2] == ["ssl-studio", "run"]
        args = cli._parser().parse_args(words[1:])
        assert args.out == (tmp_path / "ws" / run.name)
        assert cli.config_from_args(args) == run.config
        assert (cli.recipe_from_args(args, run.config.method) or default_recipe(run.config.method)) == run.recipe
        assert cli.transfer_config_from_args(args) == TransferConfig(fractions=(0.1, 1.0), finetune_epochs=(2,))
        assert args.no_umap and not args.no_transfer
    assert not (tmp_path / "ws").exists()  # printing runs nothing


def test_printed_commands_leave_the_folders_choice_what_the_sweep_leaves_it(tmp_path, capsys):
    # hue 0.1 is SimCLR's default: printed all the same, or a grey folder's choice (hue 0) would take its place.
    argv = ["sweep", str(tmp_path / "data"), "--out", str(tmp_path / "ws"), "--vary", "hue=0.05,0.1",
            "--resolution", "16", "--grayscale-p", "0.5"]
    assert cli.main(argv + ["--print-commands"]) == 0
    lines = capsys.readouterr().out.splitlines()
    planned = expand(cli.sweep_from_args(cli._parser().parse_args(argv)))
    grey = choose(FolderFacts(images=24, classes=8, grey=True, side=20))
    for line, run, hue in zip(lines, planned, (0.05, 0.1), strict=True):
        args = cli._parser().parse_args(shlex.split(line)[1:])
        recipe = cli.recipe_from_args(args, "simclr") or default_recipe("simclr")
        config, recipe, kept = grey.apply(cli.config_from_args(args), recipe, cli.given_from_args(args))
        assert (config, recipe) == grey.apply(run.config, run.recipe, run.given)[:2]
        assert (config.resolution, recipe.hue, recipe.grayscale_p, recipe.saturation) == (16, hue, 0.5, 0.0)


def test_a_sweeps_runs_take_the_folders_choice_as_ssl_studio_run_does(tmp_path, capsys):
    grey = grey_copy(make_shapes(tmp_path / "data", per_class=3, size=20, seed=1), tmp_path / "grey")
    chosen = ["--grayscale-p", "0.5", "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--no-umap",
              "--no-transfer"]
    assert cli.main(["sweep", str(grey), "--out", str(tmp_path / "ws"), "--vary", "hue=0.3", *chosen]) == 0
    assert cli.main(["run", str(grey), "--out", str(tmp_path / "run"), "--hue", "0.3", *chosen]) == 0
    swept, ran = (json.loads((folder / "config.json").read_text())
                  for folder in (tmp_path / "ws" / "simclr-hue0.3-seed0", tmp_path / "run"))
    for key in ("train", "recipe", "data", "defaults"):
        assert swept[key] == ran[key], key
    # The folder's: 32 px, saturation off; the person's: grayscale 0.5 and the varied hue.
    assert swept["train"]["resolution"] == 32 and swept["recipe"]["saturation"] == 0.0
    assert (swept["recipe"]["grayscale_p"], swept["recipe"]["hue"]) == (0.5, 0.3)
    assert sorted(swept["defaults"]["kept"]) == ["recipe.grayscale_p", "recipe.hue"]


def test_a_bad_setting_is_refused_naming_it_and_nothing_is_written(tmp_path, capsys):
    data = make_shapes(tmp_path / "data", per_class=4, size=20, seed=2)
    assert cli.main(["sweep", str(data), "--out", str(tmp_path / "ws"), "--vary", "view_fraction=0.5,2"]) == 2
    assert "the view size (view_fraction) must be at most 1 (got 2)" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()


def test_a_tiny_sweep_runs_end_to_end_and_resume_finishes_a_queue(tmp_path, capsys):
    data = make_shapes(tmp_path / "data", per_class=4, size=20, seed=2)
    ws = tmp_path / "ws"
    assert cli.main(["sweep", str(data), "--out", str(ws), "--methods", "simclr,byol", "--seeds", "2",
                     "--no-transfer", *TINY]) == 0
    captured = capsys.readouterr()
    assert "4 run(s): 4 self-supervised trainings and 2 supervised baseline(s)" in captured.err
    assert "Supervised baseline shared with simclr-seed1" in captured.err
    summary = json.loads((ws / SUMMARY).read_text())
    assert sorted(g["runs"] for g in summary["groups"]) == [["byol-seed0", "byol-seed1"],
                                                            ["simclr-seed0", "simclr-seed1"]]
    assert summary["verdict"] in captured.out
    assert [j.state for j in Queue(ws).jobs()] == ["finished"] * 4
    # A queue left with a job (as after a cancel): --resume takes it up; nothing else is run again.
    queue = json.loads((ws / QUEUE).read_text())
    queue["jobs"][3]["state"] = "queued"
    (ws / QUEUE).write_text(json.dumps(queue))
    assert cli.main(["sweep", "--resume", str(ws)]) == 0
    err = capsys.readouterr().err
    assert "[1] byol-seed1 (resumed), 0 more queued" in err and "[2]" not in err
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--resume"])
