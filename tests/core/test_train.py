import json
import math
from types import SimpleNamespace

import pytest
import torch

from ssl_studio.core import train as train_module
from ssl_studio.core.cancel import CancelToken
from ssl_studio.core.checkpoint import CheckpointError, load_checkpoint, load_state_into
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.methods import build_method, method_names
from ssl_studio.core.methods.base import TwoViewMethod
from ssl_studio.core.methods.simclr import SimCLR
from ssl_studio.core.train import TrainFinished, TrainingError, TrainProgress, embedding_health, lr_at, train

IMAGES = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
LABELS = torch.arange(16) % 2


@pytest.fixture(autouse=True)
def report_every_step(monkeypatch):
    # Reports are time-based; every step makes event counts deterministic.
    monkeypatch.setattr(train_module, "REPORT_EVERY_S", 0.0)


def config(**kw):
    base = dict(method="simclr", epochs=1, time_budget=None, batch_size=8, resolution=16, device="cpu")
    return TrainConfig(**{**base, **kw})


def run(method_name, cfg, **kw):
    torch.manual_seed(0)
    method = build_method(method_name, cfg.backbone, num_classes=2)
    events = list(train(method, IMAGES, LABELS, cfg, **kw))
    return method, events


@pytest.mark.parametrize("name", method_names())
def test_two_steps_of_each_method(name, tmp_path):
    method, events = run(name, config(method=name), checkpoint_path=tmp_path / "ck.safetensors")
    progress = [e for e in events if isinstance(e, TrainProgress)]
    done = events[-1]
    assert isinstance(done, TrainFinished) and done.reason == "completed" and done.steps == 2
    assert [p.step for p in progress] == [1, 2]
    assert all(math.isfinite(p.loss) and p.views_per_second > 0 for p in progress)
    assert progress[-1].fraction == 1.0 and progress[-1].eta == 0.0
    assert done.checkpoint == tmp_path / "ck.safetensors"
    # A method comparing two views reports how alike its positive pairs and its negatives are, every report.
    for p in progress:
        if isinstance(method, TwoViewMethod):
            assert [len(s) for s in p.similarities] == [8, 8] and all((s.abs() <= 1.0001).all() for s in p.similarities)
        else:
            assert p.similarities is None


def test_checkpoint_round_trip_restores_the_same_network(tmp_path):
    path = tmp_path / "ck.safetensors"
    method, _ = run("simclr", config(), checkpoint_path=path)
    tensors, meta = load_checkpoint(path)
    assert meta["method"] == "simclr" and meta["finished"] and meta["step"] == 2
    assert json.loads(path.with_suffix(".json").read_text())["step"] == 2
    fresh = build_method("simclr", "small-cnn")
    load_state_into(fresh, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, "simclr", path)
    trained, restored = method.state_dict(), fresh.state_dict()
    assert trained.keys() == restored.keys() and all(torch.equal(trained[k], restored[k]) for k in trained)
    x = torch.rand(4, 3, 16, 16)
    method.eval(), fresh.eval()
    # Close, not bitwise: the trained copy may be in channels_last, whose convolution kernels round differently.
    torch.testing.assert_close(method.backbone(x), fresh.backbone(x))


def test_a_compiled_step_trains_and_saves_plain_weights(tmp_path, monkeypatch):
    """torch.compile's own backend takes minutes of C++ builds on a CPU; dynamo's eager backend traces the same
    step through the same wrapper, which is what the loop must get right (plain checkpoint names included)."""
    compiled = []
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or real(model, backend="eager"))
    path = tmp_path / "ck.safetensors"
    method, events = run("simclr", config(compile=True), checkpoint_path=path)
    assert compiled == [method]
    assert events[-1].steps == 2 and all(math.isfinite(e.loss) for e in events[:-1])
    tensors, _ = load_checkpoint(path)
    assert {k[6:] for k in tensors if k.startswith("model.")} == set(method.state_dict())


@pytest.mark.parametrize("native_bf16", [True, False])
@pytest.mark.parametrize("name", ["simclr", "rotation", "supervised"])
def test_steps_train_in_channels_last_with_bf16_where_the_cpu_has_it(name, native_bf16, monkeypatch):
    """Both settings are forced here, so the bf16 code that CUDA runs is tested on any machine."""
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: native_bf16)
    tuning = train_module.StepTuning(torch.device("cpu"))
    assert tuning.channels_last and tuning.bf16 == native_bf16
    method, events = run(name, config(method=name))
    assert events[-1].steps == 2 and all(math.isfinite(e.loss) for e in events[:-1])
    conv = next(m for m in method.modules() if isinstance(m, torch.nn.Conv2d))
    # The weights stay float32 (autocast only lowers the precision of the step's arithmetic).
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and conv.weight.dtype == torch.float32


def test_cancel_then_resume_continues_to_the_same_weights(tmp_path):
    straight, events = run("simclr", config(epochs=2))
    assert events[-1].steps == 4
    assert [e.epoch for e in events if isinstance(e, TrainProgress)][-1] == 1  # the second epoch, counted from 0

    path = tmp_path / "ck.safetensors"
    cancel = CancelToken()
    torch.manual_seed(0)
    first = build_method("simclr", "small-cnn")
    history = []
    for event in train(first, IMAGES, None, config(epochs=2), cancel=cancel, checkpoint_path=path):
        if isinstance(event, TrainProgress) and event.step == 2:
            cancel.cancel()
        history.append(event)
    assert history[-1].reason == "cancelled" and history[-1].steps == 2
    assert load_checkpoint(path)[1]["finished"] is False

    torch.manual_seed(123)  # the checkpoint, not the seed, must decide the weights
    resumed = build_method("simclr", "small-cnn")
    events = list(train(resumed, IMAGES, None, config(epochs=2), checkpoint_path=path, resume=True))
    assert events[-1].reason == "completed" and events[-1].steps == 4
    assert [h[0] for h in events[-1].history] == [1, 2, 3, 4]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


@pytest.mark.parametrize("name", method_names())
def test_each_method_resumes_bit_for_bit(name, tmp_path):
    """Weights, optimizer, random state and the method's own buffers (MoCo's queue, BatchNorm's statistics, the
    momentum targets) all come back from the checkpoint: the resumed run ends where the uninterrupted one does."""
    straight, _ = run(name, config(method=name, epochs=2))
    path = tmp_path / "ck.safetensors"
    cancel = CancelToken()
    torch.manual_seed(0)
    first = build_method(name, "small-cnn", num_classes=2)
    for event in train(first, IMAGES, LABELS, config(method=name, epochs=2), cancel=cancel, checkpoint_path=path):
        if isinstance(event, TrainProgress) and event.step == 2:
            cancel.cancel()
    torch.manual_seed(123)
    resumed = build_method(name, "small-cnn", num_classes=2)
    events = list(train(resumed, IMAGES, LABELS, config(method=name, epochs=2), checkpoint_path=path, resume=True))
    assert events[-1].reason == "completed" and events[-1].steps == 4
    expected, got = straight.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    assert [k for k in expected if not torch.equal(expected[k], got[k])] == []


def test_a_method_that_draws_pictures_sends_them_with_its_progress():
    _, events = run("masked", config(method="masked"))
    pictures = [e.pictures for e in events if isinstance(e, TrainProgress) and e.pictures]
    assert pictures  # the first report carries them, then every PICTURES_EVERY_S
    assert [name for name, _ in pictures[0]] == ["original", "masked", "reconstructed"]
    assert all(t.shape == (train_module.PICTURE_IMAGES, 3, 16, 16) and t.device.type == "cpu"
               for _, t in pictures[0])
    _, events = run("simclr", config())
    assert not any(e.pictures for e in events if isinstance(e, TrainProgress))


def test_cancel_before_start_stops_at_once():
    cancel = CancelToken()
    cancel.cancel()
    _, events = run("simclr", config(), cancel=cancel)
    assert len(events) == 1 and events[0].reason == "cancelled" and events[0].steps == 0


def test_time_budget_stops_the_run():
    _, events = run("simclr", config(epochs=None, time_budget=0.01))
    assert events[-1].reason == "budget" and events[-1].steps >= 1


def test_the_time_budget_counts_training_not_what_the_consumer_does_between_reports(monkeypatch):
    # A clock that each reading moves on by 0.1 s; the consumer spends 1,000 s on each report (as the pipeline
    # spends a little on the SSL map's snapshots). Counted, the first report would end a 1 s budget after 1 step.
    now = [0.0]

    def perf_counter():
        now[0] += 0.1
        return now[0]

    monkeypatch.setattr(train_module, "time", SimpleNamespace(perf_counter=perf_counter))
    torch.manual_seed(0)
    events = []
    for event in train(build_method("simclr", "small-cnn", num_classes=2), IMAGES, LABELS,
                       config(epochs=None, time_budget=1.0)):
        events.append(event)
        if isinstance(event, TrainProgress):
            now[0] += 1000.0
    done = events[-1]
    assert done.reason == "budget" and done.steps > 1
    assert 1.0 <= done.seconds < 2.0  # the loop's own readings only
    assert all(0 < e.elapsed < 2.0 for e in events[:-1])


class NaNSimCLR(SimCLR):
    def forward(self, views, targets=None):
        loss, z = super().forward(views, targets)
        return loss * float("nan"), z


def test_nan_loss_stops_with_a_clear_message():
    torch.manual_seed(0)
    method = build_method("simclr", "small-cnn")
    bad = NaNSimCLR(method.backbone, method.recipe)
    with pytest.raises(TrainingError, match="nan.*lower learning rate"):
        list(train(bad, IMAGES, None, config()))


def test_out_of_memory_suggests_a_smaller_batch(monkeypatch):
    torch.manual_seed(0)
    method = build_method("simclr", "small-cnn")

    def explode(*args, **kw):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(method, "forward", explode)
    with pytest.raises(TrainingError, match="try 4"):
        list(train(method, IMAGES, None, config()))


def test_supervised_without_labels_is_refused():
    method = build_method("supervised", "small-cnn", num_classes=2)
    with pytest.raises(TrainingError, match="needs labels"):
        list(train(method, IMAGES, None, config(method="supervised")))


def test_resume_refuses_a_checkpoint_of_another_method(tmp_path):
    path = tmp_path / "ck.safetensors"
    run("rotation", config(method="rotation"), checkpoint_path=path)
    method = build_method("simclr", "small-cnn")
    with pytest.raises(TrainingError, match="rotation"):
        list(train(method, IMAGES, None, config(), checkpoint_path=path, resume=True))


def test_a_pickle_where_weights_belong_is_refused(tmp_path):
    path = tmp_path / "ck.safetensors"
    path.write_bytes(b"\x80\x04\x95" + b"cos\nsystem\n(S'echo pwned'\ntR." * 3)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(path)


def test_learning_rate_warms_up_then_decays():
    assert lr_at(1.0, 0.0, 0.1) < lr_at(1.0, 0.1, 0.1)
    assert lr_at(1.0, 0.1, 0.1) == pytest.approx(1.0)
    assert lr_at(1.0, 1.0, 0.1) == pytest.approx(0.0, abs=1e-9)


def test_health_reads_one_when_spread_and_zero_when_collapsed():
    g = torch.Generator().manual_seed(0)
    assert embedding_health(torch.randn(512, 32, generator=g)) == pytest.approx(1.0, abs=0.1)
    assert embedding_health(torch.ones(512, 32)) == pytest.approx(0.0, abs=1e-6)


def test_training_on_rows_samples_only_those_images(monkeypatch):
    """rows= trains on part of the images without copying that part out first (the mapped cache stays mapped)."""
    images = torch.zeros(40, 3, 16, 16, dtype=torch.uint8)
    rows = torch.arange(0, 40, 3)
    images[rows] = 255
    labels = torch.full((40,), 99)  # out of range: a batch holding any other row would fail the loss
    labels[rows] = rows % 2
    method = build_method("supervised", "small-cnn", num_classes=2)
    seen = []
    make_views = method.make_views
    monkeypatch.setattr(method, "make_views", lambda x, y, g: (seen.append(x.clone()), make_views(x, y, g))[1])
    events = list(train(method, images, labels, config(method="supervised", epochs=2, batch_size=4), rows=rows))
    assert events[-1].steps == 2 * (len(rows) // 4)
    assert seen and all((batch == 255).all() for batch in seen)


def test_the_budget_stops_at_whichever_bound_comes_first_and_its_fraction_is_the_larger_share():
    cancel = CancelToken()
    budget = train_module.StopRule(config(epochs=2, time_budget=10.0), steps_per_epoch=5, cancel=cancel)
    assert budget.total_steps == 10
    assert budget.fraction(3, 1.0) == pytest.approx(0.3)  # steps ahead of time
    assert budget.fraction(3, 5.0) == pytest.approx(0.5)  # time ahead of steps
    assert budget.fraction(12, 20.0) == 1.0
    assert budget.stop_reason(9, 9.9) is None
    assert budget.stop_reason(10, 0.0) == "completed"
    assert budget.stop_reason(0, 10.0) == "budget"
    cancel.cancel()
    assert budget.stop_reason(0, 0.0) == "cancelled"

    time_only = train_module.StopRule(config(epochs=None, time_budget=4.0), steps_per_epoch=5, cancel=CancelToken())
    assert time_only.total_steps is None
    assert time_only.fraction(1000, 1.0) == pytest.approx(0.25)
    assert time_only.stop_reason(1000, 3.9) is None


def test_each_rank_takes_its_own_rows_of_an_epoch_and_a_resumed_run_the_same_ones():
    rows = torch.arange(100, 110)
    ranks = [train_module.Batches(rows, seed=3, batch=2, steps_per_epoch=2, rank=r, world=2) for r in (0, 1)]
    epoch = [ranks[r].at(step).tolist() for step in (0, 1) for r in (0, 1)]
    taken = [row for batch in epoch for row in batch]
    assert all(len(batch) == 2 for batch in epoch)
    assert len(set(taken)) == 8 and set(taken) <= set(range(100, 110))  # 2 steps x 2 ranks x 2, none twice
    resumed = train_module.Batches(rows, seed=3, batch=2, steps_per_epoch=2, rank=1, world=2)
    assert resumed.at(3).tolist() == ranks[1].at(3).tolist()
    assert ranks[0].at(2).tolist() != ranks[0].at(0).tolist() or ranks[0].at(3).tolist() != ranks[0].at(1).tolist()
