"""The runnable YAML configs, shipped with the package and found by name (``recipes list configs``)."""
