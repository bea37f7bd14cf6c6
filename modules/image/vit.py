"""A small Vision Transformer for 28x28 (or 8x8) images: torchvision's VisionTransformer with small dimensions."""

from __future__ import annotations

from torch import nn
from torchvision.models import VisionTransformer

__all__ = ["SmallViT"]


class SmallViT(VisionTransformer):
    """torchvision's ViT with a patch projection for ``in_channels`` channels; its layers are ``encoder.layers``
    (so ``layer_decay_root: net.encoder.layers`` decays the lr over a real transformer stack).

    Args:
        in_channels: image channels.
        num_classes: output classes.
        image_size: input height and width.
        patch_size: side of the square patches; None picks the largest of 7, 4, 2 that divides image_size.
        num_layers: transformer blocks.
        num_heads: attention heads.
        hidden_dim: width of the token embeddings.
        mlp_dim: hidden width of each block's MLP.
        dropout: dropout in the blocks.
    """

    head_name = "heads"  # the classification head, relative to this network
    torchvision_arch = None  # no torchvision weights exist for these dimensions

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        patch_size: int | None = None,
        num_layers: int = 4,
        num_heads: int = 4,
        hidden_dim: int = 64,
        mlp_dim: int = 128,
        dropout: float = 0.0,
    ) -> None:
        patch = patch_size or next(p for p in (7, 4, 2, 1) if image_size % p == 0)
        if image_size % patch:
            raise ValueError(f"patch_size {patch} does not divide image_size {image_size}")
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim {hidden_dim} is not a multiple of num_heads {num_heads}")
        super().__init__(
            image_size=image_size,
            patch_size=patch,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            mlp_dim=mlp_dim,
            dropout=dropout,
            num_classes=num_classes,
        )
        self.conv_proj = nn.Conv2d(in_channels, hidden_dim, kernel_size=patch, stride=patch)

    def no_weight_decay(self) -> set[str]:
        """The class token and position embeddings are not weights to shrink (timm's convention)."""
        return {"class_token", "encoder.pos_embedding"}
