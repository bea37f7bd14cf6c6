"""Speech data: corpora (Asterisk prompts, LibriSpeech layout, manifests), audio, espeak-ng speech and length-bucketed batches."""
