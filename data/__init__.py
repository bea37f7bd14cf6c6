"""The data side (installed as ``recipes.data``): shared batching and file sources at the root, one subpackage per task."""
