"""The optimizer benchmark: suites of workloads, runs with time-to-target, AlgoPerf-style scoring, reports."""
