"""Plain ``nn.Module`` networks, built by name: the recipes' own (``cnn``, ``resnet18``, ``vit``, for small
images), ``torchvision:<name>`` (any torchvision classification model) and ``timm:<name>`` (with timm)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from recipes.modules.image.cnn import SmallCNN
from recipes.modules.image.library_nets import TimmNet, TorchvisionNet
from recipes.modules.image.resnet import ResNet18Small
from recipes.modules.image.vit import SmallViT
from recipes.modules.registry import Registry, construct

__all__ = ["IMAGE_NETS", "build_image_net", "SmallCNN", "ResNet18Small", "SmallViT"]

# Each network names its classification head (``head_name``) and, if torchvision has weights for it,
# its architecture (``torchvision_arch``); ``recipes.modules.image.weights`` uses both for fine-tuning.
IMAGE_NETS: Registry[Callable[..., nn.Module]] = Registry(
    "image network",
    [("cnn", SmallCNN), ("resnet18", ResNet18Small), ("vit", SmallViT)],
    setting="model.net",
    also="torchvision:<name> (e.g. torchvision:resnet50) or timm:<name>",
)
# ``<library>:<name>`` builds a library's model of that name.
LIBRARIES: Registry[Callable[..., nn.Module]] = Registry(
    "model library", [("torchvision", TorchvisionNet), ("timm", TimmNet)], setting="model.net"
)


def build_image_net(name: str, in_channels: int, num_classes: int, image_size: int, **kwargs) -> nn.Module:
    """Build an image classifier network by name (``cnn``, ``resnet18``, ``vit``, ``torchvision:<name>``,
    ``timm:<name>``)."""
    library, _, arch = name.partition(":")
    if arch:
        build: Callable[..., nn.Module] = LIBRARIES.lookup(library)
        kwargs = {"arch": arch, **kwargs}
    else:
        build = IMAGE_NETS.lookup(name)
    return construct(name, build, in_channels=in_channels, num_classes=num_classes, image_size=image_size, **kwargs)
