import copy

import pytest
import torch
from torch import nn

from ssl_studio.core.cancel import CancelToken
from ssl_studio.core.checkpoint import load_state_into
from ssl_studio.core.config import TrainConfig
from ssl_studio.core.methods import build_method
from ssl_studio.core.models import SmallCNN
from ssl_studio.core.train import TrainProgress, train
from ssl_studio.core import train as train_module

IMAGES = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def trained_weights(net: nn.Module) -> nn.Module:
    """Weights and BatchNorm statistics no fresh network has, so that the two layer orders compute differently."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + (0.5 if "var" in name else -0.5))
    return net.eval()


def test_a_stage_pools_before_it_normalizes():
    net = SmallCNN()
    kinds = [type(layer).__name__ for layer in net.net]
    assert kinds[:9] == ["Normalize", "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU",
                         "Conv2d", "MaxPool2d", "BatchNorm2d", "ReLU"]
    assert kinds[-4:] == ["BatchNorm2d", "ReLU", "AdaptiveAvgPool2d", "Flatten"]  # the last stage keeps its size
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 256)
    assert net.features_map(torch.rand(2, 3, 32, 32)).shape == (2, 256, 4, 4)


def test_weights_saved_in_the_older_order_load_into_it_and_compute_what_they_did():
    old = SmallCNN()
    old.arrange(pool_first=False)
    trained_weights(old)
    saved = old.state_dict()
    assert "net.2.weight" in saved and "net.3.weight" not in saved  # BatchNorm right after the first conv

    # The older order, spelled out layer by layer as the network was before: conv, norm, relu, then pool.
    conv_norm = [layer for layer in old.net if isinstance(layer, (nn.Conv2d, nn.BatchNorm2d))]
    spelled = [old.net[0]]
    for i in range(4):
        spelled += [conv_norm[2 * i], conv_norm[2 * i + 1], nn.ReLU()] + ([nn.MaxPool2d(2)] if i < 3 else [])
    x = torch.rand(4, 3, 32, 32)
    before = nn.Sequential(*spelled, nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()(x)

    for load in (lambda net: net.load_state_dict(saved), lambda net: load_state_into(net, saved, "ssl", "x")):
        fresh = SmallCNN()
        load(fresh)
        assert fresh.pool_first is False
        torch.testing.assert_close(fresh.eval()(x), before)
    assert not torch.allclose(trained_weights(SmallCNN())(x), before)  # the same weights in today's order differ

    again = SmallCNN()
    again.load_state_dict(saved)
    again.load_state_dict(trained_weights(SmallCNN()).state_dict())  # today's order: back to pooling first
    assert again.pool_first is True


def test_a_run_saved_in_the_older_order_resumes_bit_for_bit(tmp_path, monkeypatch):
    """The optimizer holds the weights of the network as built (today's order): rearranging on load keeps them."""
    monkeypatch.setattr(train_module, "REPORT_EVERY_S", 0.0)
    config = TrainConfig(method="simclr", epochs=2, time_budget=None, batch_size=8, resolution=16, device="cpu")

    def older(seed=0):
        torch.manual_seed(seed)
        method = build_method("simclr", "small-cnn")
        method.backbone.arrange(pool_first=False)
        return method

    straight = older()
    list(train(straight, IMAGES, None, config))
    path, cancel = tmp_path / "ck.safetensors", CancelToken()
    for event in train(older(), IMAGES, None, config, cancel=cancel, checkpoint_path=path):
        if isinstance(event, TrainProgress) and event.step == 2:
            cancel.cancel()
    torch.manual_seed(123)
    resumed = build_method("simclr", "small-cnn")
    events = list(train(resumed, IMAGES, None, config, checkpoint_path=path, resume=True))
    assert events[-1].reason == "completed" and events[-1].steps == 4
    assert resumed.backbone.pool_first is False
    expected, got = straight.state_dict(), resumed.state_dict()
    assert [k for k in expected if not torch.equal(expected[k], got[k])] == []


@pytest.mark.parametrize("pool_first", [True, False])
def test_a_copy_keeps_its_order_and_its_own_layers(pool_first):
    """BYOL's and MoCo's momentum targets are deep copies of the backbone."""
    net = SmallCNN()
    net.arrange(pool_first)
    twin = copy.deepcopy(net)
    assert twin.pool_first is pool_first
    assert [type(a) for a in twin.net] == [type(b) for b in net.net]
    assert all(a is not b for a, b in zip(twin.net, net.net))
    twin.arrange(not pool_first)  # from its own layers, not the original's
    assert not {id(layer) for layer in twin.net} & {id(layer) for layer in net.net}
    assert net.pool_first is pool_first and twin.pool_first is not pool_first
