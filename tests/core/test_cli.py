"""End to end through the command line, on tiny generated folders."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ssl_studio.cli import main
from ssl_studio.core.pipeline import open_run
from ssl_studio.core.samples import make_shapes

FAST = ["--epochs", "1", "--batch-size", "16", "--resolution", "16", "--no-umap"]
TRANSFER = ["--transfer-fractions", "0.5,1", "--finetune-epochs", "1"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes", per_class=6, size=24, seed=1)


def test_inspect_json_lists_images_classes_and_skipped_files(shapes, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(shapes, folder)
    (folder / "circle" / "broken.png").write_bytes(b"not a png")
    out = subprocess.run([sys.executable, "-m", "ssl_studio", "inspect", str(folder), "--json"],
                         capture_output=True, text=True, check=True).stdout
    summary = json.loads(out)
    assert summary["images"] == 48
    assert summary["classes"] == {name: 6 for name in sorted(p.name for p in shapes.iterdir())}
    assert [s["path"] for s in summary["skipped"]] == ["circle/broken.png"]
    assert summary["skipped"][0]["reason"]


def test_run_writes_a_complete_run_folder(shapes, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(shapes), "--out", str(out), *FAST, *TRANSFER]) == 0
    for name in ("config.json", "dataset.json", "split.json", "metrics.json", "report.png", "transfer.json",
                 "ssl.safetensors", "ssl.json", "supervised.safetensors", "finetune_ssl_1pct.safetensors",
                 "finetune_scratch_10pct.safetensors"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"] == {"images": 48, "classes": {n: 6 for n in metrics["dataset"]["classes"]},
                                  "skipped": 0}
    assert set(metrics["embeddings"]) == {"ssl", "supervised", "untrained", "pixels"}
    for scores in metrics["embeddings"].values():
        assert set(scores) == {"knn_top1", "linear_top1"} and all(0 <= v <= 1 for v in scores.values())
    for which in ("ssl", "supervised"):
        assert set(metrics["train"][which]) >= {"seconds", "steps", "views_per_second"}
        assert metrics["train"][which]["steps"] >= 1
    for space in ("ssl", "supervised", "untrained", "pixels"):
        assert np.load(out / "embeddings" / f"{space}.npy").shape[0] == 48
        assert np.load(out / "projections" / f"{space}_pca.npy").shape == (48, 2)
    assert Image.open(out / "report.png").size[0] > 400
    loaded = open_run(out)
    assert loaded.class_names == sorted(metrics["dataset"]["classes"]) and len(loaded.paths) == 48
    assert loaded.history["ssl"] and loaded.history["supervised"]
    assert set(loaded.transfer["probe"]) == {"ssl", "supervised", "untrained", "pixels"}
    assert [p["fraction"] for p in loaded.transfer["probe"]["ssl"]["linear"]] == [0.5, 1.0]
    assert [p["fraction"] for p in loaded.transfer["finetune"]["scratch"]] == [0.01, 0.1]
    err = capsys.readouterr().err
    assert "kNN" in err and "fine-tuned from scratch" in err and "the self-supervised features reach" in err


def test_no_transfer_skips_the_transfer_stage(shapes, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(shapes), "--out", str(out), *FAST, "--no-transfer"]) == 0
    assert (out / "report.png").is_file() and not (out / "transfer.json").exists()
    assert not list(out.glob("finetune_*")) and "fine-tuned" not in capsys.readouterr().err


def test_transfer_runs_on_a_run_folder_made_before_the_transfer_stage(shapes, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(shapes), "--out", str(out), *FAST, "--no-transfer"]) == 0
    config = json.loads((out / "config.json").read_text())
    train = config["train"]  # as runs were written then: SimCLR's temperature at the top, no compile setting
    train["temperature"] = train.pop("params")["temperature"]
    del train["compile"]
    (out / "config.json").write_text(json.dumps(config))
    report = (out / "report.png").read_bytes()
    assert main(["transfer", str(out), "--transfer-fractions", "0.25,1", "--finetune-fractions", "0.25",
                 "--finetune-epochs", "2"]) == 0
    curves = open_run(out).transfer
    assert [p["fraction"] for p in curves["probe"]["pixels"]["knn"]] == [0.25, 1.0]
    assert [(p["fraction"], p["steps"]) for p in curves["finetune"]["ssl"]] == [(0.25, 2)]
    assert (out / "report.png").read_bytes() != report
    assert "done:" in capsys.readouterr().err


def test_transfer_flags_are_checked(shapes, tmp_path, capsys):
    assert main(["transfer", str(tmp_path / "nothing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["run", str(shapes), "--out", str(tmp_path / "run"), "--transfer-fractions", "0.5,2"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert main(["run", str(shapes), "--out", str(tmp_path / "run"), "--finetune-budget", "5,5,5"]) == 2
    assert "one per fine-tuning fraction" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(shapes), "--out", str(tmp_path / "run"), "--finetune-epochs", "two"])


def test_unlabeled_folder_runs_without_accuracies_and_says_why(shapes, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, png in enumerate(sorted(shapes.glob("*/*.png"))[:20]):
        shutil.copy(png, flat / f"{i}.png")
    out = tmp_path / "run"
    assert main(["run", str(flat), "--out", str(out), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["embeddings"] == {} and "supervised" not in metrics["train"]
    assert "unlabeled" in metrics["note"]
    assert not (out / "supervised.safetensors").exists()
    assert (out / "report.png").is_file()
    assert "unlabeled" in json.loads((out / "transfer.json").read_text())["error"]


def test_bad_input_gives_a_clear_error_and_exit_code(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing"), "--out", str(tmp_path / "run"), *FAST]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "run"), "--batch-size", "1"]) == 2
    assert "batch size" in capsys.readouterr().err
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "run"), "--time-budget", "0"]) == 2
    assert "time budget" in capsys.readouterr().err
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "run"), "--epochs", "0"]) == 2
    assert "epochs" in capsys.readouterr().err


def test_version_and_a_help_that_lists_every_command(capsys):
    import argparse

    from ssl_studio import __version__
    from ssl_studio.cli import COMMANDS, _parser

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"ssl-studio {__version__}"

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    (commands,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) == set(COMMANDS)  # what main() hands to the parser rather than to the app
    for command in commands._choices_actions:
        assert f"{command.dest} {command.help}" in text
    assert "ssl-studio [DATA_DIR | RUN_DIR] opens the app" in text


def test_recipe_transfer_and_budget_flags_become_the_settings(tmp_path, capsys):
    from ssl_studio.cli import _parser, config_from_args, recipe_from_args, transfer_config_from_args
    from ssl_studio.core.augment import NO_AUGMENTATION
    from ssl_studio.core.methods import default_recipe
    from ssl_studio.core.transfer import TransferConfig

    def parse(*flags):
        return _parser().parse_args(["run", str(tmp_path), "--out", str(tmp_path / "run"), *flags])

    args = parse("--recipe", "none", "--flip-p", "0.5", "--crop-scale", "0.3,0.9", "--epochs", "4",
                 "--transfer-repeats", "3", "--finetune-fractions", "0.1,0.2", "--finetune-epochs", "2,3")
    assert recipe_from_args(args, "simclr") == NO_AUGMENTATION.replace(flip_p=0.5, crop_scale=(0.3, 0.9))
    assert (config_from_args(args).epochs, config_from_args(args).time_budget) == (4, None)
    assert transfer_config_from_args(args) == TransferConfig(repeats=3, finetune_fractions=(0.1, 0.2),
                                                             finetune_epochs=(2, 3))
    # No recipe flag: the pipeline takes the method's own recipe; one flag changes only its own setting.
    assert recipe_from_args(parse(), "rotation") is None
    assert recipe_from_args(parse("--hue", "0.5"), "rotation") == default_recipe("rotation").replace(hue=0.5)
    assert config_from_args(parse()).time_budget == 120.0 and config_from_args(parse()).epochs is None
    # A recipe out of its range is refused before any image is read, naming the setting.
    assert main(["run", str(tmp_path / "missing"), "--out", str(tmp_path / "run"), "--crop-scale", "0.9,0.1"]) == 2
    assert "crop scale must give its minimum first" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing"), "--out", str(tmp_path / "run"), "--blur-sigma", "1,9"]) == 2
    assert "the blur sigma must be at most 5 (got 9)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("--finetune-steps", "5", "--finetune-epochs", "2")  # one fine-tuning budget at a time


def test_audit_prints_the_counts_and_the_top_of_each_list_or_the_json(finished_runs, tmp_path, capsys):
    from ssl_studio.core.runs import RunFolder

    path = shutil.copytree(finished_runs[0]["labeled"][1], tmp_path / "run")
    run = RunFolder.open(path)
    paths = run.read_dataset().paths
    x = np.random.default_rng(0).normal(size=(len(paths), 8)).astype(np.float32)
    x[1] = x[0]  # image 1 is image 0 again
    run.save_embedding("ssl", x)
    assert main(["audit", str(path), "--space", "ssl"]) == 0
    out = capsys.readouterr().out.splitlines()
    # The copy ranks first (distance 0); random neighbours may follow, pairs closer than their next neighbours.
    assert out[0].startswith("ssl: ") and " near-duplicate pairs" in out[0]
    assert f"  duplicate  {paths[0]}  {paths[1]}" in out[1]
    assert main(["audit", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == run.read_audit(paths) and printed["spaces"]["ssl"]["duplicates"][0] == [paths[0], paths[1]]
    assert main(["audit", str(path), "--space", "nope"]) == 2 and "no 'nope' space" in capsys.readouterr().err


def test_audit_of_an_unlabeled_run_says_it_has_no_label_audit(finished_runs, tmp_path, capsys):
    path = shutil.copytree(finished_runs[0]["unlabeled"][1], tmp_path / "run")
    assert main(["audit", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no label audit: the folder has no labels") and "likely wrong labels" not in out
