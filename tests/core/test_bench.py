"""The bench's sections at tiny sizes: the figures they report are present, finite and positive. Never their speed."""

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_studio.bench import projection, scale_folder
from ssl_studio.bench.common import Table, fastest_rounds
from ssl_studio.bench.quality import measure_quality
from ssl_studio.bench.runner import Sizes, main, run
from ssl_studio.bench.training import OLDER_ORDER, PHASES, StepPlan, measure_training
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.methods import method_names
from ssl_studio.core.samples import make_shapes

TINY = Sizes(images=16, augment_batch=8, augment_rounds=1, loader_batches=1,
             train={("small-cnn", "cpu"): StepPlan(batch=4, steps=1, loop_seconds=0.5)}, ratio_rounds=1,
             umap_points=60, umap_dim=8, ui_train_seconds=5, quality_budgets=())


def positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_run_writes_every_figure_of_the_sections_it_ran(tmp_path):
    out = io.StringIO()
    report = run(TINY, ("ingest", "augment", "train", "quality"), tmp_path / "bench.json", Table(out), quick=True)

    assert report["errors"] == {}
    assert json.loads((tmp_path / "bench.json").read_text()) == json.loads(json.dumps(report))
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["torch"]
    ingest = report["ingest"]
    assert ingest["images"] == 16
    assert all(positive(ingest[k]) for k in ("decode_images_per_second", "cache_images_per_second", "cache_speedup"))
    assert positive(report["augment_speedup_vs_torchvision"])
    assert set(report["augment"]["views_per_second"]) == {"core", "core_1_thread", "torchvision_1_process",
                                                          "torchvision_dataloader"}
    assert all(positive(v) for v in report["augment"]["views_per_second"].values())
    assert set(report["train_views_per_second"]) == {f"{m}/small-cnn/cpu" for m in method_names()}
    assert all(positive(v) for v in report["train_views_per_second"].values())
    for figures in report["train"].values():
        assert set(figures["seconds_per_step"]) == set(PHASES)
        assert all(positive(s) for s in figures["seconds_per_step"].values())
        assert figures["loop_steps"] >= 1
    assert report["train"]["simclr/small-cnn/cpu"]["views_per_step"] == 2 * 4
    ratios = report["train_vs_simclr"]
    assert set(ratios) == {*method_names(), OLDER_ORDER} and ratios["simclr"]["vs_simclr"] == 1
    assert all(positive(v["views_per_second"]) for v in ratios.values())
    assert report["train"]["rotation/small-cnn/cpu"]["views_per_step"] == 4 * 4
    assert report["skipped"] == {"quality": "full run only"}
    assert "projection" not in report and "ui_max_gap_ms" not in report
    text = out.getvalue()
    assert "rotation/small-cnn/cpu" in text and "speedup vs torchvision" in text and "skipped" in text


def test_training_measures_each_planned_backbone_only():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8, generator=gen)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    plans = {("resnet18", "cpu"): StepPlan(batch=2, steps=1, loop_seconds=0.5)}

    results = measure_training(Table(io.StringIO()), images, labels, ["cpu"], plans, methods=("supervised",))

    assert list(results) == ["supervised/resnet18/cpu"]
    figures = results["supervised/resnet18/cpu"]
    assert figures["views_per_step"] == 2 and figures["loop_steps"] >= 1
    assert positive(figures["loop_views_per_second"]) and positive(figures["split_views_per_second"])


def test_projection_reports_pca_and_both_umap_processes(monkeypatch, tmp_path):
    # UMAP's JIT takes tens of seconds: the bench's own runs measure it; here only the bookkeeping is checked.
    shapes = []
    times = {"cold": {"import": 1.0, "fit": 2.0}, "warm": {"import": 0.5, "warm_up": 0.5, "fit": 0.25}}
    monkeypatch.setattr(projection, "umap_in_fresh_processes", lambda x: shapes.append(x.shape) or times)

    figures = projection.measure_projection(Table(io.StringIO()), 60, 8)

    assert shapes == [(60, 8)]
    assert figures["umap"] == times and positive(figures["pca_seconds"])


def test_embeddings_like_is_seeded_and_shaped():
    x = projection.embeddings_like(50, 6)
    assert x.shape == (50, 6) and x.dtype == np.float32
    assert np.array_equal(x, projection.embeddings_like(50, 6))


def test_quality_scores_ssl_beside_pixels_and_untrained(tmp_path):
    folder = make_shapes(tmp_path / "shapes", per_class=4, size=32)
    config = TrainConfig(batch_size=8)

    out = io.StringIO()
    results = measure_quality(Table(out), {"shapes": folder}, (0.05,), tmp_path / "cache", config,
                              methods=("simclr", "masked"))

    shapes = results["shapes"]
    assert shapes["images"] == 32 and shapes["classes"] == 8
    assert set(shapes["ssl"]) == {"simclr", "masked"}  # a row per method, each with its own defaults
    for top1 in (shapes["pixels"], shapes["untrained"], *(m["0.05"]["knn_top1"] for m in shapes["ssl"].values())):
        assert 0.0 <= top1 <= 1.0
    assert all(m["0.05"]["steps"] >= 1 for m in shapes["ssl"].values())
    assert "shapes: masked 0.05 s" in out.getvalue()


def test_fastest_rounds_calls_each_contestant_in_turn():
    calls = []
    best = fastest_rounds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=2)
    assert calls == ["a", "b"] * 3  # one warm-up round, then two timed
    assert set(best) == {"a", "b"} and all(s >= 0 for s in best.values())


def test_table_rows_are_fixed_width():
    out = io.StringIO()
    table = Table(out)
    table.row("first", 12345.6, "views/s", "note")
    table.row("second", 0.01234, "s")
    first, second = out.getvalue().splitlines()
    assert first.index("12,346") + len("12,346") == second.index("0.0123") + len("0.0123")


def test_unknown_section_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--only", "ingest,nonsense"])
    assert exc.value.code == 2
    assert "nonsense" in capsys.readouterr().err


def test_scale_reports_ingest_and_reopen_per_resolution_and_keeps_its_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(scale_folder, "bench_folder_root", lambda: tmp_path / "bench")
    sizes = Sizes(images=16, quality_budgets=(), scale_images=16, scale_map_points=0, scale_gloo_epochs=0)
    out = io.StringIO()
    report = run(sizes, ("scale",), None, Table(out), quick=True)

    assert report["errors"] == {} and "ingest" not in report  # the scale section makes its own folder
    folder = report["scale"]["folder"]
    assert folder["images"] == 16 and not folder["reused"] and positive(folder["generate_seconds"])
    for px in (32, 64):
        first, reopen = report["scale"][f"ingest_{px}"]["first"], report["scale"][f"ingest_{px}"]["reopen"]
        assert first["images"] == reopen["images"] == 16 and first["stage"] == "decoding"
        assert reopen["stage"] == "cache" and first["cache_mb"] == 16 * 3 * px * px / 2**20
        assert all(positive(float(f[k])) for f in (first, reopen) for k in ("seconds", "peak_mb", "before_mb"))
        assert positive(report["scale_ingest"][px]["images_per_second"])
    assert "map" not in report["scale"] and "reopen from the cache" in out.getvalue()
    again = scale_folder.shapes_folder(16)  # the generated folder is kept for the next run
    assert again[0] == Path(folder["path"]) and again[1]["reused"]


def test_transfer_times_the_probe_curves_and_each_fine_tuning_run(tmp_path):
    from ssl_studio.bench.transfer import measure_transfer
    from ssl_studio.core.transfer import TransferConfig

    settings = TransferConfig(fractions=(0.5, 1.0), finetune_fractions=(0.5,), finetune_steps=(1,))
    figures = measure_transfer(Table(io.StringIO()), 32, tmp_path, settings)

    assert figures["images"] == 32 and figures["finetune_steps"] == {"ssl 50%": 1, "scratch 50%": 1}
    assert all(positive(figures[k]) for k in ("seconds", "probe_seconds", "finetune_seconds"))
    assert figures["seconds"] == pytest.approx(figures["probe_seconds"] + figures["finetune_seconds"])


def test_elsewhere_times_ssl_studio_embed_and_weighs_report_html(tmp_path, monkeypatch):
    from ssl_studio.bench import elsewhere

    monkeypatch.setattr(elsewhere, "CONFIG", TrainConfig(epochs=1, time_budget=None, batch_size=16, resolution=16,
                                                         device="cpu"))
    out = io.StringIO()
    figures = elsewhere.measure_elsewhere(Table(out), 16, tmp_path)

    assert figures["images"] == 16 and np.load(tmp_path / "embedded.npy").shape == (16, 256)
    assert all(positive(figures[k]) for k in ("embed_seconds", "embed_cpu_seconds", "embed_images_per_second",
                                              "report_megabytes", "report_seconds"))
    assert (tmp_path / "report" / "report.html").stat().st_size == round(figures["report_megabytes"] * 1e6)
    assert "ssl-studio embed 16 new" in out.getvalue() and "report.html of a 16-image run" in out.getvalue()


def test_selection_times_each_strategy_on_the_embeddings_it_was_given_the_size_of():
    from ssl_studio.bench.selection import measure_selection
    from ssl_studio.core.label_selection import STRATEGIES

    out = io.StringIO()
    figures = measure_selection(Table(out), 300, 10, rounds=1)
    assert (figures["images"], figures["budget"]) == (300, 10)
    for kind in ("seconds", "cpu_seconds"):
        assert set(figures[kind]) == set(STRATEGIES) and all(positive(s) for s in figures[kind].values())
    assert "select 10 of 300 (typical)" in out.getvalue()


def test_the_audit_is_timed_on_embeddings_of_the_size_it_was_given():
    from ssl_studio.bench.audit import measure_audit

    out = io.StringIO()
    figures = measure_audit(Table(out), 300, rounds=1)
    assert (figures["images"], figures["dimensions"]) == (300, 256)
    assert positive(figures["seconds"]) and positive(figures["cpu_seconds"])
    assert figures["found"]["mislabeled"] > 0  # labels that agree with nothing: the label pass had work to do
    assert "audit of 300 x 256 (one space, labeled)" in out.getvalue()


def test_another_program_runs_only_while_busy():
    from ssl_studio.bench.busy import another_program

    with another_program(False) as nothing:
        assert nothing is None
    with another_program(True) as other:
        assert other.poll() is None  # running
    assert other.returncode is not None  # and gone after the block


def test_busy_runs_each_contestant_quiet_then_beside_another_program_and_gives_the_median_ratio(monkeypatch):
    from contextlib import nullcontext

    from ssl_studio.bench import busy, ui

    calls = []

    def fake(folder, config, env, out):
        pinned = env.get("OMP_NUM_THREADS") == str(busy.usable_cores())
        calls.append((out.name, pinned))
        quiet = {("0", False): 1000.0, ("1", False): 800.0, ("0", True): 1000.0, ("1", True): 900.0}
        return quiet[(out.name[0], pinned)] * ((0.1 if pinned else 0.45) if out.name.endswith("busy") else 1)

    monkeypatch.setattr(ui, "command_line_views_per_second", fake)
    monkeypatch.setattr(ui, "unavailable", lambda: "no window here")
    monkeypatch.setattr(busy, "another_program", lambda b: nullcontext())
    out = io.StringIO()
    results = busy.measure_busy(Table(out), Path("images"), 5, rounds=2)

    assert [name for name, _ in calls] == [f"{r}-{c}-{s}" for r in "01" for c in "01" for s in ("quiet", "busy")]
    assert [pinned for _, pinned in calls] == [False, False, True, True] * 2
    line = results["command line"]
    assert line["quiet"] == [1000, 800] and line["busy"] == pytest.approx([450, 360])
    assert line["busy_over_quiet"] == pytest.approx(0.45)
    assert results["command line, pinned (before)"]["busy_over_quiet"] == pytest.approx(0.1)
    text = out.getvalue()
    assert "command line: busy / quiet" in text and "1,000/450, 800/360" in text
    assert "app: busy / quiet" in text and "no window here" in text


def test_gpu_check_refuses_without_cuda_and_says_why(monkeypatch, capsys):
    from ssl_studio.bench import gpu

    monkeypatch.setattr(gpu, "cuda_available", lambda: False)
    assert main(["--gpu"]) == 2
    captured = capsys.readouterr()
    assert "--gpu needs a CUDA GPU" in captured.err and "--dry-run" in captured.err
    assert "GPU check plan" in captured.out  # the plan is printed first, so what would run is visible


def test_gpu_dry_run_prints_a_plan_of_every_method_on_both_backbones_within_5_minutes(monkeypatch, capsys):
    from ssl_studio.bench import gpu
    from ssl_studio.core.models import BACKBONES

    monkeypatch.setattr(gpu, "cuda_available", lambda: pytest.fail("a dry run asks nothing of the GPU"))
    assert main(["--gpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for backbone in BACKBONES:
        for method in method_names():
            assert f"  {method}/{backbone}: views/s, 3 s at batch 512" in out
    assert "2 epochs of 50,000 images at 32 px, torch.compile off" in out
    assert "2 epochs of 50,000 images at 32 px, torch.compile on" in out
    assert "the demo (35 epochs of shapes" in out
    assert gpu.PLAN.estimate_seconds() <= 300


@pytest.mark.parametrize("argv", [["--dry-run"], ["--gpu", "--only", "train"], ["--gpu", "--quick"]])
def test_gpu_options_that_do_not_go_together_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "--gpu" in capsys.readouterr().err


def test_gpu_check_rows_at_tiny_sizes_on_the_cpu(tmp_path):
    from ssl_studio.bench import gpu
    from ssl_studio.core.models import BACKBONES

    out = io.StringIO()
    figures = gpu.measure_gpu(Table(out), gpu.tiny_plan(tmp_path), device="cpu")

    assert set(figures["views_per_second"]) == {f"{m}/{b}" for b in BACKBONES for m in method_names()}
    assert all(positive(v) for v in figures["views_per_second"].values())
    assert set(figures["epoch_seconds"]) == {"compile off"}  # the tiny plan leaves compiling out
    epochs = figures["epoch_seconds"]["compile off"]
    assert positive(epochs["first"]) and epochs["second"] >= 0
    demo = figures["demo"]
    assert {"load", "ssl", "supervised", "embed", "score", "project", "report", "transfer"} <= set(demo["stages"])
    assert demo["seconds"] == pytest.approx(sum(demo["stages"].values()))
    assert "the demo's settings, start to finish" in out.getvalue()


def test_workspace_times_listing_and_grouping_the_runs_it_made(tmp_path):
    from ssl_studio.bench.workspace import SEEDS, measure_workspace
    from ssl_studio.core.workspace import list_runs

    out = io.StringIO()
    figures = measure_workspace(Table(out), 12, tmp_path, rounds=1)
    assert figures["runs"] == 12 and all(positive(s) for s in figures["seconds"].values())
    assert set(figures["seconds"]) == {"list", "summarize", "page"}
    rows = list_runs(tmp_path / "workspace")
    assert len(rows) == 12 and {r.state for r in rows} == {"finished"}
    groups = json.loads((tmp_path / "workspace" / "summary.json").read_text())["groups"]
    assert sorted(len(g["runs"]) for g in groups) == [12 - 2 * SEEDS, SEEDS, SEEDS]
    assert "list 12 runs" in out.getvalue() and "3 groups of 5 seeds" in out.getvalue()
    assert "Runs page shows 12 listed runs" in out.getvalue()


def test_sweep_check_recomputes_the_summary_from_the_run_folders_and_finds_a_tampered_value(tmp_path):
    from ssl_studio.bench.sweep_check import TOLERANCE, check
    from ssl_studio.core.workspace import SUMMARY, summarize
    from workspaces import make_run

    for seed, knn in ((0, 0.80), (1, 0.82), (2, 0.84)):
        make_run(tmp_path, f"a{seed}", seed=seed, knn=knn, linear=0.5, transfer=0.4 + 0.1 * seed)
    make_run(tmp_path, "b0", lr=1e-3, knn=0.7, linear=0.6)
    summarize(tmp_path)
    out = io.StringIO()
    assert check(tmp_path, out) <= TOLERANCE
    printed = out.getvalue()
    # mean 82, sample std sqrt(((-2)^2 + 0 + 2^2) / 2) = 2; transfer 50 ± 10; one seed: no spread
    assert "[a0, a1, a2]: ssl_knn 82.00 ± 2.00 % (80.0, 82.0, 84.0); ssl_linear 50.00 ± 0.00 %" in printed
    assert "transfer_1pct 50.00 ± 10.00 % (40.0, 50.0, 60.0)" in printed
    assert "[b0]: ssl_knn 70.00 % (70.0); ssl_linear 60.00 % (60.0)" in printed
    summary = json.loads((tmp_path / SUMMARY).read_text())
    summary["groups"][0]["metrics"]["ssl_knn"]["std"] += 0.001
    (tmp_path / SUMMARY).write_text(json.dumps(summary))
    assert check(tmp_path, io.StringIO()) == pytest.approx(0.001)
    summary["groups"].pop()  # b0 in no group
    (tmp_path / SUMMARY).write_text(json.dumps(summary))
    out = io.StringIO()
    assert check(tmp_path, out) == math.inf and "finished runs in no group: b0" in out.getvalue()
