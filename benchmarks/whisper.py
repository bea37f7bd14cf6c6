"""Whisper tiny.en on the Asterisk prompts: zero-shot, then fine-tuned, on the same held-out test split.

    python -m benchmarks.whisper [--config configs/speech_whisper.yaml] [--root DIR] [overrides ...]

Runs what a user runs: ``test`` without a checkpoint (the converted pretrained model, zero-shot), ``fit``,
then ``test --ckpt_path best``. All three use the config's datamodule, so the split (seeded by
``data.seed``), the text normalization and the CER/WER metrics are identical. Prints CER, WER and wall times,
then the wall time of one training step (batch of 8 real prompts) with the encoder trained, frozen, and
frozen with its outputs cached (``--skip_steps`` leaves that table out).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import median_ms, print_table
from benchmarks.speech import _last, _run


def step_times(batch_size: int = 8) -> list[list[object]]:
    """Median ms of one forward + backward of Whisper tiny.en on a real batch, per encoder regime."""
    from recipes.data.speech.datamodule import SpeechDataModule
    from recipes.modules.speech.whisper_recognizer import WhisperRecognizer

    data = SpeechDataModule(batch_size=batch_size)
    data.setup("fit")
    waves, lengths, targets, target_lengths, index = next(iter(data.train_dataloader()))
    model = WhisperRecognizer(cache_frozen_encoder=True)
    model.train()

    def step() -> None:
        model.zero_grad()
        model.model_step((waves, lengths, targets, target_lengths, index), generate=False)[0].backward()

    rows = []
    for name, frozen, cached in (
        ("encoder trained", False, False),
        ("encoder frozen", True, False),
        ("encoder frozen, outputs cached", True, True),
    ):
        model.model.model.encoder.requires_grad_(not frozen)
        model.hparams.cache_frozen_encoder = cached
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append([name, f"{trainable / 1e6:.1f}M", f"{median_ms(step, repeats=3, warmup=1):.0f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/speech_whisper.yaml")
    parser.add_argument("--root", default=None, help="keep the run here instead of a temporary folder")
    parser.add_argument("--skip_steps", action="store_true", help="leave out the per-step timing table")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root or tmp)
        common = [
            "--config",
            args.config,
            "--trainer.default_root_dir",
            str(root),
            "--trainer.enable_progress_bar",
            "false",
            *overrides,
        ]
        zero_s = _run("test", common)
        zero = _last(root)
        fit_s = _run("fit", common)
        epochs = int(_last(root)["epoch"]) + 1
        tuned_s = _run("test", common, "--ckpt_path", "best")
        tuned = _last(root)
    name = args.config + (" " + " ".join(overrides) if overrides else "")
    rows = [
        [
            "zero-shot (converted CTranslate2 weights)",
            "-",
            "-",
            f"{zero['test/cer']:.3f}",
            f"{zero['test/wer']:.3f}",
            f"{zero_s:.0f}",
        ],
        [
            f"fine-tuned ({name})",
            epochs,
            f"{fit_s:.0f}",
            f"{tuned['test/cer']:.3f}",
            f"{tuned['test/wer']:.3f}",
            f"{tuned_s:.0f}",
        ],
    ]
    header = ["model", "epochs", "fit wall s", "test CER", "test WER", "test wall s"]
    print_table("Whisper tiny.en on the Asterisk prompts, held-out test split (seeded utterance split)", header, rows)
    if not args.skip_steps:
        header = ["encoder", "trainable params", "ms / step"]
        print_table("One training step of Whisper tiny.en (8 real prompts, padded to 30 s), CPU", header, step_times())


if __name__ == "__main__":
    main()
