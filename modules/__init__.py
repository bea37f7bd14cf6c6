"""The model side (installed as ``recipes.modules``): shared pieces at the root, one subpackage per task."""
