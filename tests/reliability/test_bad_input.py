"""Bad input through the command line, end to end: every awkward file is loaded or skipped with its own reason,
training runs on what loads, and unusable folders end with a clear message and exit code 2, never a traceback."""

import json

import pytest

from reliability_corpus import FAST, GOOD, SKIPPED, cli
from ssl_studio.cli import main
from ssl_studio.core.data import load_folder
from ssl_studio.core.pipeline import open_run


def assert_skips_match(skipped: list[dict]) -> None:
    assert sorted(s["path"] for s in skipped) == sorted(SKIPPED)
    for s in skipped:
        assert SKIPPED[s["path"]] in s["reason"], s


def test_inspect_json_accounts_for_every_file(corpus):
    result = cli("inspect", str(corpus["mixed"]), "--json", deny_in=corpus["mixed"])
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)
    assert summary["images"] == len(GOOD)
    assert summary["classes"] == {"ants": len(GOOD) - 6, "bees": 6}
    assert_skips_match(summary["skipped"])


def test_the_loader_keeps_exactly_the_usable_files(corpus, unreadable):
    ds = load_folder(corpus["mixed"], 16)
    assert sorted(ds.paths) == sorted(GOOD)
    assert_skips_match([vars(s) for s in ds.skipped])
    assert len({s.reason for s in ds.skipped}) >= 7  # each kind of damage is named for what it is


def test_run_trains_on_what_loads(corpus, unreadable, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(corpus["mixed"]), "--out", str(out), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dataset"]["images"] == len(GOOD) and metrics["dataset"]["skipped"] == len(SKIPPED)
    assert set(metrics["train"]) == {"ssl", "supervised"}
    assert_skips_match(json.loads((out / "dataset.json").read_text())["skipped"])
    loaded = open_run(out)
    assert sorted(loaded.paths) == sorted(GOOD) and loaded.class_names == ["ants", "bees"]
    assert capsys.readouterr().err.count("Traceback") == 0


def test_one_class_trains_ssl_without_a_baseline_and_says_so(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(corpus["one_class"]), "--out", str(out), *FAST]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["train"]) == {"ssl"} and not (out / "supervised.safetensors").exists()
    # With a single class every prediction is right: 100% would mean nothing, so there are no accuracies...
    assert metrics["embeddings"] == {}
    # ... and the note says why, on the console too.
    assert "one class" in metrics["note"] and "one class" in capsys.readouterr().err


def test_one_image_is_a_clear_error(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(corpus["one_image"]), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "at least 2 images" in err and "Traceback" not in err
    # Nothing that looks like a run is left behind for the app to open.
    assert not (out / "config.json").exists()


@pytest.mark.parametrize("command", ["inspect", "run"])
def test_empty_folder_is_a_clear_error_with_exit_code_2(corpus, tmp_path, capsys, command):
    args = [command, str(corpus["empty"])] + (["--out", str(tmp_path / "run"), *FAST] if command == "run" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "No images found" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_inspect_prints_names_that_are_not_utf8(corpus, unreadable, capsys):
    # capsys's stdout is strict UTF-8, like a terminal in an en_US.UTF-8 locale.
    assert main(["inspect", str(corpus["mixed"])]) == 0
    out = capsys.readouterr().out
    assert "bees/\\udce9t\\udce9.jpg: not an image" in out and "bees/bomb.png: decompression bomb" in out
