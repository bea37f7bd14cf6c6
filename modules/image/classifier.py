"""Image classification: a network from ``recipes.modules.image.nets``, cross-entropy with label smoothing,
accuracy per stage.

Fine-tuning: ``pretrained`` names weights (``torchvision:<WEIGHTS>`` or a checkpoint file, see
``recipes.modules.image.weights``) copied over the freshly initialized network when fitting starts. They are
loaded then, not in ``__init__``, and only for a fit that does not restore a checkpoint: a fine-tuned
checkpoint holds every weight, so ``validate``/``test``/``predict`` and resuming never need the
pretraining file (it may be gone).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from recipes.modules.errors import ConfigError
from recipes.modules.image.nets import build_image_net
from recipes.modules.image.weights import backbone_prefixes, load_image_weights, parse_pretrained
from recipes.modules.init import InitConfig
from recipes.modules.optim import OptimizerConfig, SchedulerConfig
from recipes.modules.pretrained import FinetuneConfig
from recipes.modules.task import TaskModule

__all__ = ["ImageClassifier"]


class ImageClassifier(TaskModule):
    """Classifies images into ``num_classes`` classes.

    Args:
        net: the network: cnn (a small VGG-style CNN), resnet18 (ResNet-18 for 28x28 inputs) or vit (a small ViT).
        num_classes: number of classes; the CLI takes it from the datamodule.
        in_channels: image channels; the CLI takes it from the datamodule.
        image_size: image height and width; the CLI takes it from the datamodule.
        class_names: class names for predictions; the CLI takes them from the datamodule.
        net_kwargs: extra arguments of the network, e.g. ``{widths: [32, 64, 128]}`` for cnn.
        label_smoothing: label smoothing of the cross-entropy loss.
        channels_last: keep the network's weights and its inputs in channels-last memory layout (NHWC), the layout
            oneDNN's and cuDNN's fastest convolutions take (about 1.4x on this CPU in float32, 2x with bf16).
        flip_tta: evaluate and predict on the mean of the logits of each image and its horizontal mirror (test-time
            augmentation; for classes a mirror does not change, such as clothes or natural photos).
        optimizer: the optimizer and its parameter groups (shared factory).
        scheduler: the learning-rate schedule (shared factory).
        compile: compile the network with ``torch.compile`` (``recipes.modules.compile``): true, or its arguments
            (``{mode: max-autotune, dynamic: true}``); checkpoints are the same either way.
        init: the initializer of the freshly built network (shared factory).
        pretrained: weights to start from: ``torchvision:IMAGENET1K_V1`` (torchvision architectures, from
            torchvision's cache) or a ``.ckpt`` (recipes) / ``.pt`` / ``.pth`` / ``.safetensors`` file. Tensors
            whose name and shape match are loaded; a head with another number of classes starts fresh.
        new_head: start the classification head fresh even when its shape matches (a new task, same classes count).
        finetune: freeze the backbone (everything but the head) for the first ``freeze_epochs`` or ``freeze_steps``.
    """

    def __init__(
        self,
        net: str = "cnn",
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        class_names: list[str] | None = None,
        net_kwargs: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        channels_last: bool = False,
        flip_tta: bool = False,
        optimizer: OptimizerConfig = OptimizerConfig(),
        scheduler: SchedulerConfig = SchedulerConfig(),
        compile: bool | dict[str, Any] = False,
        init: InitConfig = InitConfig(),
        pretrained: str | None = None,
        new_head: bool = False,
        finetune: FinetuneConfig = FinetuneConfig(),
    ) -> None:
        super().__init__()
        self.configure_training(optimizer, scheduler, compile, init, finetune)
        self.net = self.initialize(build_image_net(net, in_channels, num_classes, image_size, **(net_kwargs or {})))
        self.head_name = f"net.{self.net.head_name}"
        if pretrained:
            parse_pretrained(pretrained, self.net)  # its form only: the file itself is read when fitting starts
        elif new_head:
            raise ConfigError("new_head is set but pretrained is not", "set model.pretrained, or drop model.new_head")
        if self.finetune_config.gradient_checkpointing or self.finetune_config.trust_remote_code:
            raise ConfigError(
                "finetune.gradient_checkpointing and finetune.trust_remote_code apply to transformers backbones, "
                "not image networks",
                "leave them false",
            )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.train_acc, self.val_acc, self.test_acc = (
            MulticlassAccuracy(num_classes, average="micro") for _ in range(3)
        )
        self.test_class_acc = MulticlassAccuracy(num_classes, average=None)  # test/acc_<class>
        # The loss as a metric: Lightning's sync_dist mean truncates the summed batch sizes to an integer under DDP.
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()

    def backbone_prefixes(self) -> list[str]:
        """Submodule (and parameter) names holding everything but the classification head."""
        return backbone_prefixes(self, self.head_name)

    def load_pretrained_weights(self) -> None:
        """Copy ``pretrained``'s matching tensors into the network and log what was loaded."""
        skip = (self.net.head_name,) if self.hparams.new_head else ()
        rank_zero_info(load_image_weights(self.net, self.hparams.pretrained, skip=skip).summary())

    def on_fit_start(self) -> None:
        # A fit that restores a checkpoint (resuming) has every weight already; only a fresh fit loads.
        if self.hparams.pretrained and not self.trainer.ckpt_path:
            self.load_pretrained_weights()

    def configure_model(self) -> None:
        if self.hparams.channels_last:
            self.net.to(memory_format=torch.channels_last)
        super().configure_model()  # torch.compile, when asked for

    def forward(self, x: Tensor) -> Tensor:
        """Class logits; outside training with ``flip_tta``, the mean of the image's and its mirror's."""
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.hparams.flip_tta and not self.training:
            return (self.net(x) + self.net(x.flip(-1))) / 2
        return self.net(x)

    def model_step(self, batch: tuple[Tensor, ...]) -> tuple[Tensor, Tensor, Tensor]:
        x, y = batch[0], batch[1]
        logits = self(x)
        return self.criterion(logits, y), logits.argmax(dim=1), y

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        loss, preds, y = self.model_step(batch)
        self.train_acc(preds, y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        loss, preds, y = self.model_step(batch)
        self.val_acc(preds, y)
        self.val_loss.update(loss.detach().float(), weight=len(y))
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        loss, preds, y = self.model_step(batch)
        self.test_acc(preds, y)
        self.test_class_acc.update(preds, y)
        self.test_loss.update(loss.detach().float(), weight=len(y))
        self.log("test/loss", self.test_loss)
        self.log("test/acc", self.test_acc)

    def on_test_epoch_end(self) -> None:
        """Accuracy of each class (``test/acc_<class name>``), over every process's test images."""
        names = self.hparams.class_names or [str(i) for i in range(self.hparams.num_classes)]
        for name, acc in zip(names, self.test_class_acc.compute()):
            self.log(f"test/acc_{re.sub(r'[^0-9A-Za-z._-]+', '_', str(name))}", acc)
        self.test_class_acc.reset()

    def predict_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> dict[str, Any]:
        x, y, index = batch
        prob, pred = torch.softmax(self(x).float(), dim=1).max(dim=1)
        names = self.hparams.class_names
        return {
            "index": index,
            "target": y,
            "prediction": pred,
            "label": [names[i] for i in pred.tolist()] if names else pred,
            "probability": prob,
        }
