"""BYOL, MoCo v2, VICReg and Barlow Twins: each loss against a hand-computed value, the momentum target, MoCo's
queue, and what torchrun will rely on, tested in one process with a stand-in for the gather."""

import math
import sys

import pytest
import torch

from ssl_studio.core.methods import build_method
from ssl_studio.core.methods.barlow import barlow_twins_loss
from ssl_studio.core.methods.byol import byol_loss, negative_cosine
from ssl_studio.core.methods.moco import MoCoParams, moco_loss
from ssl_studio.core.methods.momentum import cosine_schedule, update_momentum
from ssl_studio.core.methods.simclr import SimCLRParams
from ssl_studio.core.methods.vicreg import vicreg_loss

IMAGES = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_byol_loss_is_the_symmetric_negative_cosine():
    p = torch.tensor([[1.0, 0.0]])
    # View 1's prediction matches view 2's target (cosine 1); view 2's is orthogonal to view 1's (cosine 0).
    assert math.isclose(byol_loss(p, p, t1=torch.tensor([[0.0, 3.0]]), t2=torch.tensor([[2.0, 0.0]])).item(), -0.5)
    assert math.isclose(negative_cosine(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 0.0]])).item(),
                        -1 / math.sqrt(2), rel_tol=1e-6)


def test_byol_loss_sends_no_gradient_to_the_target():
    p, t = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    byol_loss(p, p, t, t).backward()
    assert p.grad is not None and t.grad is None


def test_moco_loss_matches_a_hand_computed_value():
    q = k = torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    # Logits at temperature 1: positive 1, negatives 0 and -1.
    expected = math.log(math.e + 1 + 1 / math.e) - 1
    assert math.isclose(moco_loss(q, k, queue, 1.0).item(), expected, rel_tol=1e-6)
    assert math.isclose(moco_loss(q * 5, k * 2, queue, 1.0).item(), expected, rel_tol=1e-6)  # cosine, not dot


def test_vicreg_loss_matches_a_hand_computed_value():
    z1 = torch.tensor([[0.5, 0.5], [-0.5, -0.5]])
    z2 = torch.tensor([[0.5, -0.5], [-0.5, 0.5]])
    invariance = 0.5  # squared differences 0, 1, 0, 1
    variance = 1 - math.sqrt(0.5 + 1e-4)  # each dimension: unbiased variance 0.5, under the hinge at 1
    covariance = 0.25 + 0.25  # per view: off-diagonal covariances +-0.5, squared, twice, over 2 dimensions
    expected = 25 * invariance + 25 * variance + 1 * covariance
    assert math.isclose(vicreg_loss(z1, z2).item(), expected, rel_tol=1e-6)
    assert math.isclose(vicreg_loss(z1, z2, 1.0, 0.0, 0.0).item(), invariance, rel_tol=1e-6)


def test_barlow_twins_loss_matches_a_hand_computed_value():
    z1 = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    z2 = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    s = 1 / (1 + 1e-5)  # standardized with the biased variance (1) plus the epsilon
    # Cross-correlation [[s, -s], [s, -s]]: the diagonal s and -s against 1, two off-diagonal s^2.
    expected = (s - 1) ** 2 + (-s - 1) ** 2 + 5e-3 * 2 * s**2
    assert math.isclose(barlow_twins_loss(z1, z2).item(), expected, rel_tol=1e-6)
    assert math.isclose(barlow_twins_loss(z1, z1, redundancy=0.0).item(), 0.0, abs_tol=1e-8)


def test_losses_run_in_float32_inside_bf16_autocast():
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for loss in (vicreg_loss(z1, z2), barlow_twins_loss(z1, z2)):
            assert loss.dtype == torch.float32
        assert torch.equal(vicreg_loss(z1, z2), vicreg_loss(z1, z2))
    assert vicreg_loss(z1, z2).item() == pytest.approx(vicreg_loss(z1.bfloat16(), z2.bfloat16()).item(), rel=1e-2)


def test_cosine_schedule_rises_from_its_start_to_one():
    assert cosine_schedule(0.0, 0.99) == pytest.approx(0.99)
    assert cosine_schedule(0.5, 0.99) == pytest.approx(0.995)
    assert cosine_schedule(1.0, 0.99) == pytest.approx(1.0)
    assert cosine_schedule(2.0, 0.99) == pytest.approx(1.0)  # a run past its budget stays at the end


def test_update_momentum_moves_the_target_toward_the_online_weights():
    online, target = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0), target.weight.fill_(0.0), online.bias.fill_(2.0), target.bias.fill_(4.0)
    update_momentum(target, online, 0.75)
    assert target.weight.tolist() == [[0.25, 0.25]] and target.bias.tolist() == [3.5]


@pytest.mark.parametrize("name, target", [("byol", "target"), ("moco", "key_encoder")])
def test_the_momentum_target_is_out_of_the_optimizer_and_follows_the_schedule(name, target):
    torch.manual_seed(0)
    method = build_method(name, "small-cnn")
    frozen = getattr(method, target)
    trained = {id(p) for group in method.param_groups() for p in group["params"]}
    assert frozen.parameters() and not any(id(p) in trained for p in frozen.parameters())
    assert all(id(p) in trained for p in [*method.backbone.parameters(), *method.projector.parameters()])
    # The target starts as a copy; after the online weights move, after_step pulls it by 1 - momentum.
    online = method.backbone.net[1].weight
    before = frozen[0].net[1].weight.clone()
    assert torch.equal(before, online)
    with torch.no_grad():
        online.add_(1.0)
    twin = build_method(name, "small-cnn")
    twin.load_state_dict(method.state_dict())
    method.after_step(0.0), twin.after_step(0.0)
    torch.testing.assert_close(frozen[0].net[1].weight, before + (1 - method.params.momentum))
    # A pure function of the weights and the progress: every process of a torchrun makes the same update.
    assert all(torch.equal(a, b) for a, b in zip(method.state_dict().values(), twin.state_dict().values()))
    moved = frozen[0].net[1].weight.clone()
    method.after_step(1.0)  # momentum 1 at the end of the run: the target no longer moves
    assert torch.equal(frozen[0].net[1].weight, moved)


def test_moco_queue_is_a_saved_buffer_that_wraps_around():
    method = build_method("moco", "small-cnn", params=MoCoParams(queue_size=16))
    assert {"queue", "queue_next"} <= set(method.state_dict())
    a, b = torch.eye(128)[:10] * 3, torch.eye(128)[10:20]  # 10 keys each; the queue keeps them normalized
    method.enqueue(a)
    method.enqueue(b)
    assert method.queue_next.item() == 4
    assert torch.equal(method.queue[4:10], a[4:] / 3)  # a's oldest six were overwritten by b's last four...
    assert torch.equal(method.queue[10:], b[:6]) and torch.equal(method.queue[:4], b[6:])  # ...after its first six


def _module(method):
    return sys.modules[type(method).__module__]


def _as_two_processes(method, views, monkeypatch):
    """Run ``method`` as rank 0 and rank 1 of a two-process run, each on its half of every view, with a gather
    that returns both ranks' rows in rank order (the other rank's as constants: its own graph is elsewhere).

    Returns each rank's loss and the sum of their gradients, which is what DDP's averaging of the gathered
    gradients amounts to (the autograd all_gather sums the gradient of every copy of a row back to its rank)."""
    groups = views.chunk(2)  # the method's views: view 1 of every image, then view 2
    halves = [torch.cat([g.chunk(2)[rank] for g in groups]) for rank in (0, 1)]
    recorded = [[], []]
    for rank in (0, 1):  # first what each rank gives to the gather
        monkeypatch.setattr(_module(method), "gather_with_grad", lambda x, r=rank: recorded[r].append(x.detach()) or x)
        with torch.no_grad():
            method(halves[rank])
    losses, grads = [], None
    for rank in (0, 1):
        calls = iter(range(len(recorded[0])))

        def gather(x, r=rank):
            i = next(calls)
            return torch.cat([x if r == other else recorded[other][i] for other in (0, 1)])

        monkeypatch.setattr(_module(method), "gather_with_grad", gather)
        loss, _ = method(halves[rank])
        mine = torch.autograd.grad(loss, [p for p in method.parameters() if p.requires_grad])
        grads = mine if grads is None else [a + b for a, b in zip(grads, mine)]
        losses.append(loss.item())
    return losses, grads


@pytest.mark.parametrize("name", ["simclr", "vicreg", "barlow"])
def test_batch_statistics_over_two_processes_equal_those_of_one(name, monkeypatch):
    torch.manual_seed(0)
    # SimCLR's rotation task is off: its loss is each process's own, averaged by DDP, not a statistic of the batch.
    params = SimCLRParams(rotation_task=0.0) if name == "simclr" else None
    method = build_method(name, "small-cnn", params=params).eval()  # per-image features (running statistics)
    views, _ = method.make_views(IMAGES, None, torch.Generator().manual_seed(1))
    loss, _ = method(views)
    full = torch.autograd.grad(loss, [p for p in method.parameters() if p.requires_grad])
    losses, summed = _as_two_processes(method, views, monkeypatch)
    assert losses == pytest.approx([loss.item()] * 2, rel=1e-5)
    scale = max(float(g.abs().max()) for g in full)  # float32 sums in another order: close to the largest
    for a, b in zip(full, summed):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)


def test_moco_enqueues_every_process_keys_so_the_queues_agree(monkeypatch):
    torch.manual_seed(0)
    method = build_method("moco", "small-cnn").eval()
    views, _ = method.make_views(IMAGES, None, torch.Generator().manual_seed(1))
    others = torch.nn.functional.normalize(torch.randn(16, 128), dim=1)  # rank 1's keys
    monkeypatch.setattr(_module(method), "gather_with_grad", lambda x: torch.cat([x, others]))
    method(views)
    with torch.no_grad():
        own = torch.nn.functional.normalize(method.key_encoder(views), dim=1)
    assert method.queue_next.item() == 32
    torch.testing.assert_close(method.queue[:16], own)
    torch.testing.assert_close(method.queue[16:32], others)
