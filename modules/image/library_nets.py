"""Classification networks from torchvision and timm, by name: ``torchvision:<name>`` is any model of
``torchvision.models.list_models(module=torchvision.models)`` (resnet50, convnext_tiny, vit_b_16, ...) and
``timm:<name>`` any of ``timm.list_models()`` when timm is installed (``pip install 'recipes[timm]'``).

Both are built without weights; ``model.pretrained`` loads torchvision's from its cache or a local file, never a
download (``recipes.modules.image.weights``). Each wrapper names its classification head (``head_name``, the last
module that produces the class scores) for fine-tuning and a fresh head.
"""

from __future__ import annotations

from torch import Tensor, nn

from recipes.modules.errors import ConfigError

__all__ = ["TorchvisionNet", "TimmNet", "find_head"]


def find_head(net: nn.Module, num_classes: int) -> str:
    """The name of the last Linear (or 1x1 Conv) module with ``num_classes`` outputs: the classification head."""
    head = None
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == num_classes:
            head = name
        elif isinstance(module, nn.Conv2d) and module.out_channels == num_classes and module.kernel_size == (1, 1):
            head = name
    if head is None:
        raise ConfigError(
            f"{type(net).__name__} has no layer with {num_classes} outputs to serve as its head",
            "choose another model.net",
        )
    return head


class TorchvisionNet(nn.Module):
    """A torchvision classification model for ``num_classes`` classes; grayscale inputs are repeated to 3 channels
    (the architectures, and their pretrained weights, expect RGB).

    Args:
        arch: the torchvision name, e.g. ``resnet50``.
        in_channels: 1 or 3.
        num_classes: output classes.
        image_size: input size (torchvision's ViTs are built for it).
        kwargs: further arguments of the torchvision builder (e.g. ``dropout``).
    """

    torchvision_root = "net"  # the submodule whose state_dict keys torchvision's weights use

    def __init__(self, arch: str, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224, **kwargs):
        super().__init__()
        from torchvision import models

        names = models.list_models(module=models)
        if arch not in names:
            raise ConfigError(
                f"torchvision has no classification model {arch!r}",
                f"choose one of torchvision.models.list_models(module=torchvision.models), e.g. {', '.join(names[:6])}",
            )
        if in_channels not in (1, 3):
            raise ConfigError(f"torchvision:{arch} takes 1 or 3 channels, not {in_channels}", "set data.channels")
        if arch.startswith("vit_") and "image_size" not in kwargs:  # built for one input size
            kwargs["image_size"] = image_size
        self.net = models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
        self.torchvision_arch = arch
        self.repeat = 3 if in_channels == 1 else 1
        self.head_name = f"net.{find_head(self.net, num_classes)}"

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.expand(-1, 3, -1, -1) if self.repeat == 3 else x)


class TimmNet(nn.Module):
    """A timm model for ``num_classes`` classes and ``in_channels`` channels (timm adapts the stem).

    Args:
        arch: the timm name, e.g. ``convnext_atto``.
        in_channels: image channels.
        num_classes: output classes.
        image_size: input size (for models built for one size, such as ViTs).
        kwargs: further arguments of ``timm.create_model``.
    """

    torchvision_arch = None  # timm's own weights come from a file (model.pretrained), never the hub
    torchvision_root = "net"  # a timm state_dict's keys are the model's own

    def __init__(self, arch: str, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224, **kwargs):
        super().__init__()
        try:
            import timm
        except ImportError:
            raise ConfigError(f"model.net timm:{arch} needs timm", "pip install 'recipes[timm]' (or timm)") from None
        if not timm.is_model(arch):
            close = timm.list_models(f"*{arch.split('_')[0]}*")[:6]
            raise ConfigError(
                f"timm has no model {arch!r}", f"choose one of timm.list_models(), e.g. {', '.join(close)}"
            )
        try:
            self.net = timm.create_model(
                arch, pretrained=False, num_classes=num_classes, in_chans=in_channels, img_size=image_size, **kwargs
            )
        except TypeError:  # convolutional models take no img_size
            self.net = timm.create_model(
                arch, pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs
            )
        classifier = self.net.pretrained_cfg.get("classifier") if hasattr(self.net, "pretrained_cfg") else None
        self.head_name = f"net.{classifier if isinstance(classifier, str) else find_head(self.net, num_classes)}"

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
