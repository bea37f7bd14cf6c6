"""CER/WER of transcripts, logged the same way by every speech recipe (CTC and Whisper), so their numbers compare."""

from __future__ import annotations

import lightning as L
from torch import Tensor

__all__ = ["log_transcription_metrics"]


def log_transcription_metrics(
    module: L.LightningModule, stage: str, loss: Tensor, hyps: list[str], refs: list[str]
) -> None:
    """Update ``module.<stage>_cer`` / ``<stage>_wer`` / ``<stage>_loss`` (torchmetrics) with normalized texts and
    the batch's loss, and log them (metric objects: exact over every rank's utterances under DDP)."""
    cer, wer, mean_loss = (
        getattr(module, f"{stage}_cer"),
        getattr(module, f"{stage}_wer"),
        getattr(module, f"{stage}_loss"),
    )
    cer(hyps, refs)
    wer(hyps, refs)
    mean_loss.update(loss.detach().float(), weight=len(refs))
    module.log(f"{stage}/loss", mean_loss, prog_bar=stage == "val", batch_size=len(refs))
    module.log(f"{stage}/cer", cer, prog_bar=stage == "val", batch_size=len(refs))
    module.log(f"{stage}/wer", wer, batch_size=len(refs))
