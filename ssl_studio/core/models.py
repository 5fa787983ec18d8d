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


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """A VGG-style net sized for 2 CPU cores at 32 px: four conv stages, each halving the resolution."""

    def __init__(self, widths=(32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = [Normalize()]
        cin = 3
        for i, width in enumerate(widths):
            layers += _conv_bn(cin, width)
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.feature_dim = cin
        self.map_stride = 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def features_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[:-2](x)  # all but the pooling and flattening


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
