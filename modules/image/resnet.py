"""torchvision's ResNet-18 adapted to small single-channel images (28x28 Fashion-MNIST)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models import resnet18

__all__ = ["ResNet18Small"]


class ResNet18Small(nn.Module):
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool, so 28x28 inputs keep enough resolution.

    Args:
        in_channels: image channels.
        num_classes: output classes.
        image_size: input size; any size of 8 or more works (the network ends in global pooling).
    """

    head_name = "net.fc"  # the classification head, relative to this network
    torchvision_arch = "resnet18"  # torchvision's weights enum for ``torchvision:<NAME>`` pretrained weights
    torchvision_root = "net"  # the submodule that holds torchvision's ResNet (its state_dict keys)

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        net = resnet18(weights=None, num_classes=num_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        self.net = net

    @torch.no_grad()
    def zero_init_last(self) -> None:
        """Zero each residual block's last BatchNorm scale, so every block starts as identity."""
        for layer in (self.net.layer1, self.net.layer2, self.net.layer3, self.net.layer4):
            for block in layer:
                nn.init.zeros_(block.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
