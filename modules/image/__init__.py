"""Image classification: the LightningModule (classifier), its networks (CNN, ResNet-18, ViT) and pretrained weights."""
