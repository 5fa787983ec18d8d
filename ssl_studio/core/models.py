"""Backbones that map float images in [0, 1] to feature vectors, and the heads methods put on top.

Every backbone has ``feature_dim`` (the length of its feature vector) and ``features_map(x)``: the spatial
features before the final pooling, (B, feature_dim, H / map_stride, W / map_stride), for methods that work per
location (masked-part prediction's decoder). ``forward`` is their average over the locations.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18

# name -> title; build_backbone makes each.
BACKBONES = {"small-cnn": "Small CNN (fast on a CPU)", "resnet18": "ResNet-18 (better on a GPU)"}


class Normalize(nn.Module):
    """Fixed input scaling, inside the network so every caller can feed plain [0, 1] images."""

    def __init__(self, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SmallCNN(nn.Module):
    """A VGG-style net sized for 2 CPU cores at 32 px: four conv stages, the first three halving the resolution.

    A stage convolves, max-pools, then normalizes (BatchNorm, ReLU): pooling first leaves a quarter of the values
    to normalize, which on 2 cores took most of a step's time on the first stage's full-size maps. With AdamW's
    fused kernel the loop's SimCLR step fell from 45 to 34 ms (BENCHMARKS.md), learning about as much per step
    (README's fifth defaults study). Runs saved before normalized first and pooled last, a different function of the
    same weights; their weights say so (a BatchNorm right after the first conv), and loading them puts the same
    layers back in that order, so old runs embed as they did and resume where they stopped.
    """

    def __init__(self, widths=(32, 64, 128, 256)) -> None:
        super().__init__()
        # The layers, kept outside the module tree: ``net`` holds them, in the order ``arrange`` chose.
        self._ends = (Normalize(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self._stages = []  # per stage: conv, pool (None in the last stage), norm, relu
        cin = 3
        for i, width in enumerate(widths):
            pool = nn.MaxPool2d(2) if i < len(widths) - 1 else None
            self._stages.append((nn.Conv2d(cin, width, 3, padding=1, bias=False), pool, nn.BatchNorm2d(width),
                                 nn.ReLU(inplace=True)))
            cin = width
        self.feature_dim = cin
        self.map_stride = 2 ** (len(widths) - 1)
        self.pool_first = None
        self.arrange(pool_first=True)
        self.register_load_state_dict_pre_hook(_follow_saved_order)

    def arrange(self, pool_first: bool) -> None:
        """Order each stage's layers: pool then normalize (today's), or normalize then pool (runs saved before).
        The layers stay the same objects, with their weights, device and memory layout: an optimizer holding
        those weights keeps working."""
        if pool_first == self.pool_first:
            return
        normalize, average, flatten = self._ends
        layers: list[nn.Module] = [normalize]
        for conv, pool, norm, relu in self._stages:
            order = (conv, pool, norm, relu) if pool_first else (conv, norm, relu, pool)
            layers += [layer for layer in order if layer is not None]
        self.net = nn.Sequential(*layers, average, flatten)
        self.pool_first = pool_first

    def arrange_for(self, state: dict, prefix: str = "") -> None:
        """Take the order ``state`` (saved weights) was trained in: its first BatchNorm is at net.2 or net.3."""
        if f"{prefix}net.2.weight" in state:
            self.arrange(pool_first=False)
        elif f"{prefix}net.3.weight" in state:
            self.arrange(pool_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def features_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[:-2](x)  # all but the pooling and flattening


def _follow_saved_order(module: SmallCNN, state: dict, prefix: str, *_) -> None:
    module.arrange_for(state, prefix)  # a load_state_dict pre-hook: weights from any caller land in their order


def arrange_for(module: nn.Module, state: dict) -> None:
    """Arrange every SmallCNN inside ``module`` in the order ``state`` (weights to be loaded) was saved from."""
    for prefix, sub in module.named_modules():
        if isinstance(sub, SmallCNN):
            sub.arrange_for(state, f"{prefix}." if prefix else "")


class ResNet18Small(nn.Module):
    """torchvision's ResNet-18, untrained, with the CIFAR stem (3x3 conv, no max-pool) for small images."""

    def __init__(self) -> None:
        super().__init__()
        net = resnet18(weights=None)
        net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.normalize = Normalize()
        self.net = net
        self.feature_dim = 512
        self.map_stride = 8  # layer2, layer3 and layer4 each halve the resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.net.avgpool(self.features_map(x)), 1)  # torchvision's forward, fc is Identity

    def features_map(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(self.normalize(x)))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))


def build_backbone(name: str) -> nn.Module:
    if name == "small-cnn":
        return SmallCNN()
    if name == "resnet18":
        return ResNet18Small()
    raise ValueError(f"unknown backbone '{name}' (choose from {', '.join(BACKBONES)})")


def mlp_head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """SimCLR's projection head: the loss acts on its output, the backbone's features are what we keep."""
    return nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))
