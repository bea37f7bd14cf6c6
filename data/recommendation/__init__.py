"""Recommendation data: MovieLens 100K files, encoding and splits, interaction batches with negatives."""
