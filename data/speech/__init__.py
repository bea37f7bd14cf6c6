"""Speech data: corpora (Asterisk prompts, LibriSpeech, manifests, audiofolders) indexed without decoding, audio
decoded a batch at a time in the loader's workers, espeak-ng speech, length-bucketed batches."""
