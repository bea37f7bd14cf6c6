"""Speech recognition: CTC (conv + GRU, Conformer) and Whisper LightningModules, networks, decoding, text, metrics."""
