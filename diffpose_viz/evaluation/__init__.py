"""Evaluation: run a checkpoint on the test split (`evaluate`) -> a results file (`diffpose_viz.results`,
docs/RESULTS_SCHEMA.md) + the metrics summary (`summary`)."""
