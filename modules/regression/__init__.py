"""Linear regression with a known optimum: the benchmark's smallest workload."""
