"""What a run prints: the parameter-group table, the progress bar, metrics, one line a checkpoint, and every
warning about the user's own settings; not third-party noise the user cannot act on.

Silenced, each by its exact text (so anything else still shows):

* Lightning's advertisement for its LitLogger service, printed by every run, and its note that it loads the
  training data to count the run's steps (every recipe's schedule needs the count);
* a deprecation inside Lightning's own code (``lightning/pytorch/utilities/_pytree.py`` calling torch's
  ``LeafSpec``), printed by ``test`` and ``predict``;
* Lightning's "Couldn't infer the batch indices" for loaders whose sampler yields whole batches (the recipes'
  own: ``predict`` writes each row under its own index);
* Lightning's "does not have many workers" advice: each DataModule sets its own ``data.num_workers``
  (worker processes where files are decoded, none where the data is already tensors in memory);
* the model summary's note that it counts bf16-mixed parameters as 32-bit (the size it prints is the weights'
  own, which stay float32 under mixed precision).
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["quiet_third_party"]

_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r"Couldn't infer the batch indices fetched from your dataloader.*",
    r"The '\w+_dataloader' does not have many workers.*",
    r"Precision bf16-mixed is not supported by the model summary.*",
)


_NOTES = ("💡 Tip: For seamless cloud logging", "Loading `train_dataloader` to estimate number of stepping batches")


class _DropAdvertisement(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_NOTES)


def quiet_third_party() -> None:
    """Install the filters above (idempotent): called once by the command line before Lightning runs."""
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropAdvertisement) for f in logger.filters):
            logger.addFilter(_DropAdvertisement())
    for message in _WARNINGS:
        warnings.filterwarnings("ignore", message=message)
