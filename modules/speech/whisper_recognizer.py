"""Speech recognition by fine-tuning a pretrained Whisper (transformers) on
``recipes.data.speech.datamodule.SpeechDataModule``.

The datamodule's batches are the CTC recipe's: raw 16 kHz waves and normalized character targets. This
module turns waves into Whisper's log-mel features (padded to 30 s, as Whisper's encoder requires), the
targets back into their normalized text (with the data's ``vocabulary``) and that into Whisper tokens, and
trains with the decoder's cross-entropy. Validation, test and predict decode with ``generate``; CER/WER
compare the hypothesis, normalized with the data's ``normalization``, with the normalized reference exactly
as ``recipes.modules.speech.recognizer`` does, so the numbers of the two recipes are comparable.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.text import CharErrorRate, WordErrorRate
from transformers.modeling_outputs import BaseModelOutput

from recipes.modules.errors import ConfigError
from recipes.modules.optim import OptimizerConfig, SchedulerConfig
from recipes.modules.pretrained import (
    FinetuneConfig,
    enable_gradient_checkpointing,
    load_pretrained,
    resolve_pretrained,
)
from recipes.modules.speech.metrics import log_transcription_metrics
from recipes.modules.speech.text import ENGLISH, Vocabulary, get_normalizer
from recipes.modules.task import TaskModule

__all__ = ["WhisperRecognizer"]

Batch = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


class WhisperRecognizer(TaskModule):
    """Fine-tunes a pretrained Whisper encoder-decoder on transcribed speech.

    Args:
        pretrained: a hub id or directory (transformers, or CTranslate2/faster-whisper, converted once).
        finetune: freezing of ``backbone`` for the first epochs/steps, gradient checkpointing, remote code.
        backbone: submodules that ``finetune.freeze_epochs``/``freeze_steps`` keep frozen (default: the encoder).
        sample_rate: of the input waveforms (must be Whisper's 16 kHz); the CLI takes it from the datamodule.
        vocabulary: the characters of the data's targets, blank first (None: English); the CLI takes it from the
            datamodule. Only the references are decoded with it: Whisper writes with its own tokens.
        normalization: the normalizer of hypotheses (``recipes.modules.speech.text.NORMALIZERS``), the one the
            targets were made with; the CLI takes it from the datamodule.
        num_beams: beam width of ``generate`` for validation, test and predict (1: greedy).
        max_new_tokens: longest transcript ``generate`` may produce, in tokens.
        dropout: dropout inside the transformer layers while training (Whisper's own is 0).
        cache_frozen_encoder: while the encoder is frozen and dropout is 0, its output for a training utterance
            never changes, so it is computed once and kept in memory (keyed by the waveform's bytes); epochs after
            the first then cost only the decoder. Memory: 1500 x d_model floats per training utterance
            (2.3 MB for tiny: ~1 GB for the 450 Asterisk prompts); the cache is dropped when the encoder unfreezes.
        optimizer: the optimizer and its parameter groups (shared factory; e.g. layer_decay over
            ``model.model.decoder.layers``, lr_mult for ``model.model.encoder``).
        scheduler: the learning-rate schedule (shared factory).
        compile: compile the network with ``torch.compile`` (``recipes.modules.compile``): true, or its arguments
            (``{mode: max-autotune, dynamic: true}``); checkpoints are the same either way.
    """

    compiled_net = "model"  # the transformers model (its generate loop calls the compiled forward)

    supersedes = {"recipes.modules.speech.whisper.WhisperRecognizer": None}  # this class, before a rename

    def __init__(
        self,
        pretrained: str = "openai/whisper-tiny.en",
        finetune: FinetuneConfig = FinetuneConfig(),
        backbone: list[str] | None = None,
        sample_rate: int = 16000,
        vocabulary: list[str] | None = None,
        normalization: str = "english",
        num_beams: int = 1,
        max_new_tokens: int = 96,
        dropout: float = 0.0,
        cache_frozen_encoder: bool = False,
        optimizer: OptimizerConfig = OptimizerConfig(lr=1e-5),
        scheduler: SchedulerConfig = SchedulerConfig(),
        compile: bool | dict[str, Any] = False,
    ) -> None:
        super().__init__()
        self.configure_training(optimizer, scheduler, compile, finetune=finetune)
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        if num_beams < 1 or max_new_tokens < 1 or not 0 <= dropout < 1:
            raise ConfigError(
                "num_beams >= 1, max_new_tokens >= 1 and 0 <= dropout < 1 are required",
                "fix model.num_beams / max_new_tokens / dropout",
            )
        self.backbone = list(backbone) if backbone is not None else ["model.model.encoder"]
        self.vocabulary = Vocabulary(vocabulary) if vocabulary is not None else ENGLISH
        self.normalize = get_normalizer(normalization)
        self.hparams.vocabulary = list(self.vocabulary.symbols)  # None is stored as the list it stands for
        trust = self.finetune_config.trust_remote_code
        self.model = load_pretrained(
            WhisperForConditionalGeneration, pretrained, trust_remote_code=trust, dropout=dropout
        )
        self.model.train()  # from_pretrained returns eval mode, which Lightning would keep while training (no dropout)
        self.processor = WhisperProcessor.from_pretrained(resolve_pretrained(pretrained), trust_remote_code=trust)
        rate = self.processor.feature_extractor.sampling_rate
        if sample_rate != rate:
            raise ConfigError(
                f"Whisper needs {rate} Hz audio, the data is {sample_rate} Hz", f"set data.sample_rate: {rate}"
            )
        if self.finetune_config.gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        self._encoder_cache: dict[bytes, Tensor] = {}
        self.val_cer, self.val_wer = CharErrorRate(), WordErrorRate()
        # The loss as a metric: Lightning's sync_dist mean truncates the summed batch sizes to an integer under DDP.
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.test_cer, self.test_wer = CharErrorRate(), WordErrorRate()

    def features(self, waves: Tensor, lengths: Tensor) -> Tensor:
        """Whisper's log-mel input features ``(B, n_mels, 3000)``, each wave padded to 30 s."""
        rows = [w[:n].float().cpu().numpy() for w, n in zip(waves, lengths.tolist())]
        # Numeric reason for leaving autocast: the extractor's STFT power and mel projection would run in
        # bf16/fp16 under mixed precision (a log of values with 8 mantissa bits), and it ends in ``.numpy()``,
        # which has no bfloat16. The features are input, like the waves, so they stay float32.
        with torch.autocast(waves.device.type, enabled=False):
            out = self.processor.feature_extractor(
                rows, sampling_rate=self.hparams.sample_rate, return_tensors="pt", device=str(waves.device)
            )
        return out.input_features.to(waves.device)

    def labels(self, texts: list[str], device: torch.device) -> Tensor:
        """Decoder targets: ``<|notimestamps|> text <|endoftext|>``, padded with -100 (ignored by the loss).

        The tokenizer's prefix starts with ``<|startoftranscript|>``, which the model itself prepends when
        it shifts the labels right into decoder inputs, so it is cut here.
        """
        tok = self.processor.tokenizer
        ids = [
            seq[1:] if seq[0] == self.model.config.decoder_start_token_id else seq
            for seq in tok([" " + t for t in texts]).input_ids
        ]
        out = torch.full((len(ids), max(map(len, ids))), -100, dtype=torch.long)
        for row, seq in zip(out, ids):
            row[: len(seq)] = torch.tensor(seq)
        return out.to(device)

    def encode(self, waves: Tensor, lengths: Tensor) -> BaseModelOutput:
        """The encoder's output for padded waves, from the cache where ``cache_frozen_encoder`` allows it."""
        encoder = self.model.get_encoder()
        frozen = not any(p.requires_grad for p in encoder.parameters())
        if not frozen:
            self._encoder_cache.clear()
        if not (self.training and frozen and self.hparams.cache_frozen_encoder and self.hparams.dropout == 0):
            return encoder(self.features(waves, lengths))
        keys = [
            hashlib.blake2b(w[:n].cpu().numpy().tobytes(), digest_size=16).digest()
            for w, n in zip(waves, lengths.tolist())
        ]
        todo = [i for i, k in enumerate(keys) if k not in self._encoder_cache]
        if todo:
            idx = torch.tensor(todo, device=waves.device)
            with torch.no_grad():
                fresh = encoder(self.features(waves[idx], lengths[idx])).last_hidden_state
            self._encoder_cache.update({keys[i]: h for i, h in zip(todo, fresh)})
        return BaseModelOutput(last_hidden_state=torch.stack([self._encoder_cache[k] for k in keys]))

    def transcribe(self, encoder_outputs: Any) -> list[str]:
        """Normalized transcripts of encoded audio, decoded with ``generate``."""
        ids = self.model.generate(
            encoder_outputs=encoder_outputs,
            num_beams=self.hparams.num_beams,
            max_new_tokens=self.hparams.max_new_tokens,
        )
        return [self.normalize(t) for t in self.processor.batch_decode(ids, skip_special_tokens=True)]

    def model_step(self, batch: Batch, generate: bool) -> tuple[Tensor, list[str], list[str]]:
        waves, wave_lengths, targets, target_lengths, _ = batch
        refs = [self.vocabulary.decode(t[:n].tolist()) for t, n in zip(targets, target_lengths)]
        encoded = self.encode(waves, wave_lengths)
        loss = self.model(encoder_outputs=encoded, labels=self.labels(refs, waves.device)).loss
        return loss, self.transcribe(encoded) if generate else [], refs

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss, _, refs = self.model_step(batch, generate=False)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(refs))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, hyps, refs = self.model_step(batch, generate=True)
        log_transcription_metrics(self, "val", loss, hyps, refs)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        loss, hyps, refs = self.model_step(batch, generate=True)
        log_transcription_metrics(self, "test", loss, hyps, refs)

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        waves, wave_lengths, *_, index = batch
        return {"index": index, "text": self.transcribe(self.encode(waves, wave_lengths))}

    def export_pretrained(self, out_dir: str) -> None:
        """Write the fine-tuned model and its processor as a directory ``from_pretrained`` loads."""
        self.model.save_pretrained(out_dir)
        self.processor.save_pretrained(out_dir)

    def backbone_prefixes(self) -> list[str]:
        return self.backbone
