"""The data side (installed as ``recipes.data``): shared batching and file sources, one subpackage per task."""
