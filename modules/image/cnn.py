"""A small VGG-style CNN for 28x28 (or smaller) images: conv-BN-ReLU stages, each halving the size."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["SmallCNN"]


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class SmallCNN(nn.Module):
    """Stages of ``convs_per_stage`` 3x3 conv-BN-ReLU layers and a 2x2 max-pool, then global pooling.

    Args:
        in_channels: image channels (1 for Fashion-MNIST).
        num_classes: output classes.
        widths: channels of each stage.
        convs_per_stage: convolutions before each pooling.
        dropout: dropout before the classifier.
        head: "flatten" keeps the last feature map's layout (best for 28x28); "pool" max-pools it to 1x1.
        image_size: input height and width, needed by the flatten head.
    """

    head_name = "head"  # the classification head, relative to this network
    torchvision_arch = None  # not a torchvision architecture: no torchvision weights

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: tuple[int, ...] = (32, 64, 128),
        convs_per_stage: int = 1,
        dropout: float = 0.1,
        head: str = "flatten",
        image_size: int = 28,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for width in widths:
            for _ in range(convs_per_stage):
                layers += _conv_bn(cin, width)
                cin = width
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        size = image_size
        for _ in widths:
            size = -(-size // 2)  # ceil, as the pooling above
        if head == "flatten":
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin * size * size, num_classes))
        elif head == "pool":
            self.head = nn.Sequential(
                nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes)
            )
        else:
            raise ValueError(f"head must be 'flatten' or 'pool', got {head!r}")

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
