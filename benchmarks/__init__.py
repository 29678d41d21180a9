"""The performance harness: `python -m benchmarks` measures the app against naive baselines.

Every suite times the app's own code path next to a reference on the same inputs
in the same run, so the ratios hold even on a noisy shared machine. See
BENCHMARKS.md for the targets and the latest results.
"""
