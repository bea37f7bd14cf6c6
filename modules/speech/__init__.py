"""Speech recognition: CTC (conv + GRU, Conformer) and Whisper LightningModules, networks, decoding, text and metrics."""
