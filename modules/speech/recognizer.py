"""Speech recognition: a log-mel front end, a CTC encoder from ``recipes.modules.speech.nets``, CER/WER per stage."""

from __future__ import annotations

from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.text import CharErrorRate, WordErrorRate

from recipes.modules.init import InitConfig
from recipes.modules.optim import OptimizerConfig, SchedulerConfig
from recipes.modules.speech.decoding import decode_batch
from recipes.modules.speech.metrics import log_transcription_metrics
from recipes.modules.speech.nets import LogMelFrontEnd, build_speech_net
from recipes.modules.speech.text import BLANK, ENGLISH, Vocabulary, check_saved_vocabulary, get_normalizer
from recipes.modules.task import TaskModule

__all__ = ["SpeechRecognizer"]

Batch = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


class SpeechRecognizer(TaskModule):
    """Transcribes speech to characters with CTC.

    Args:
        net: the encoder: crnn (convolutions + bidirectional GRU) or conformer (torchaudio Conformer blocks).
        vocabulary: the output classes, CTC blank first, then one character each (None: the English 29); the CLI
            takes it from the datamodule, and the checkpoint keeps it, so predict decodes with the training classes.
        normalization: the normalizer of hypotheses (``recipes.modules.speech.text.NORMALIZERS``), the one the
            targets were made with; the CLI takes it from the datamodule.
        sample_rate: of the input waveforms; the CLI takes it from the datamodule.
        n_mels: log-mel bands of the front end (25 ms windows every 10 ms).
        spec_augment: frequency and time masking of training batches.
        net_kwargs: extra arguments of the network, e.g. ``{hidden: 192, layers: 2}`` for crnn.
        decoder: greedy (best path) or beam (CTC prefix beam search) for validation, test and predict.
        beam_width: prefixes kept by the beam search.
        optimizer: the optimizer and its parameter groups (shared factory).
        scheduler: the learning-rate schedule (shared factory).
        compile: compile the network with ``torch.compile`` (``recipes.modules.compile``): true, or its arguments
            (``{mode: max-autotune, dynamic: true}``); checkpoints are the same either way.
        init: the initializer of the freshly built network (shared factory).
    """

    supersedes = {"recipes.modules.speech.ctc.SpeechRecognizer": None}  # this class, before a rename
    # Batches vary in length: with dynamic shapes, torch 2.11's Inductor fails in the backward of the conv front end
    # on CPU (a stride assertion), so lengths compile one by one (up to torch's recompile limit, then eager).
    compile_defaults = {"dynamic": False}

    def __init__(
        self,
        net: str = "crnn",
        vocabulary: list[str] | None = None,
        normalization: str = "english",
        sample_rate: int = 16000,
        n_mels: int = 80,
        spec_augment: bool = True,
        net_kwargs: dict[str, Any] | None = None,
        decoder: Literal["greedy", "beam"] = "greedy",
        beam_width: int = 8,
        optimizer: OptimizerConfig = OptimizerConfig(),
        scheduler: SchedulerConfig = SchedulerConfig(),
        compile: bool | dict[str, Any] = False,
        init: InitConfig = InitConfig(),
    ) -> None:
        super().__init__()
        self.configure_training(optimizer, scheduler, compile, init)
        self.vocabulary = Vocabulary(vocabulary) if vocabulary is not None else ENGLISH
        self.normalize = get_normalizer(normalization)
        self.hparams.vocabulary = list(self.vocabulary.symbols)  # None is stored as the list it stands for
        masks = {} if spec_augment else {"freq_masks": 0, "time_masks": 0}
        self.front = LogMelFrontEnd(sample_rate, n_mels, **masks)
        self.net = self.initialize(build_speech_net(net, len(self.vocabulary), n_mels, **(net_kwargs or {})))
        self.train_cer = CharErrorRate()
        self.val_cer, self.val_wer = CharErrorRate(), WordErrorRate()
        # The loss as a metric: Lightning's sync_dist mean truncates the summed batch sizes to an integer under DDP.
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.test_cer, self.test_wer = CharErrorRate(), WordErrorRate()

    def forward(self, waves: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Log-probabilities ``(B, T', vocab)`` and their lengths ``(B,)``."""
        feats, n = self.front(waves, lengths)
        logits, out_lengths = self.net(feats, n)
        return F.log_softmax(logits.float(), dim=-1), out_lengths

    def transcribe(self, log_probs: Tensor, lengths: Tensor, method: str | None = None) -> list[str]:
        ids = decode_batch(log_probs, lengths, method or self.hparams.decoder, self.hparams.beam_width, BLANK)
        return [self.normalize(self.vocabulary.decode(seq)) for seq in ids]

    def model_step(self, batch: Batch, method: str | None = None) -> tuple[Tensor, list[str], list[str]]:
        waves, wave_lengths, targets, target_lengths, _ = batch
        log_probs, lengths = self(waves, wave_lengths)
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, target_lengths, blank=BLANK, zero_infinity=True)
        refs = [self.vocabulary.decode(t[:n].tolist()) for t, n in zip(targets, target_lengths)]
        return loss, self.transcribe(log_probs, lengths, method), refs

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss, hyps, refs = self.model_step(batch, method="greedy")  # a cheap running CER under augmentation
        self.train_cer(hyps, refs)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(refs))
        self.log("train/cer", self.train_cer, on_step=False, on_epoch=True, batch_size=len(refs))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, hyps, refs = self.model_step(batch)
        log_transcription_metrics(self, "val", loss, hyps, refs)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        loss, hyps, refs = self.model_step(batch)
        log_transcription_metrics(self, "test", loss, hyps, refs)

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        waves, wave_lengths, *_, index = batch
        return {"index": index, "text": self.transcribe(*self(waves, wave_lengths))}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_saved_vocabulary((checkpoint.get("hyper_parameters") or {}).get("vocabulary"), self.vocabulary)
