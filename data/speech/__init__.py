"""Speech data: corpora (Asterisk prompts, LibriSpeech, manifests), audio, espeak-ng speech, length-bucketed batches."""
