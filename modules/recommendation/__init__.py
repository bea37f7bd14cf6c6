"""Recommendation scoring: the LightningModule, pair scorers (AutoRec, MF, NeuMF, DLRM, text tower), ranking metrics."""
