"""Recommendation scoring: the LightningModule (recommender), its pair scorers (AutoRec, MF, NeuMF, DLRM, text tower) and ranking metrics."""
